#!/bin/sh
# llmgw for shared hosting: Apache runs this file for each request, and it
# runs llmgw with your configuration.  Set LLMGW_HOME to where you put
# llmgw (it holds sbin/llmgw and llmgw.conf), then: chmod 755 llmgw.cgi
LLMGW_HOME=/home/USER/llmgw
export LLMGW_CONFIG="$LLMGW_HOME/llmgw.conf"
exec "$LLMGW_HOME/sbin/llmgw"

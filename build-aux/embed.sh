#!/bin/sh
# embed.sh NAME FILE: print C source defining "const char NAME[]" holding
# FILE's bytes and a final NUL, and "const unsigned long NAME_len".
set -e
name=$1
file=$2
echo "/* Generated from $(basename "$file") by embed.sh; do not edit. */"
echo "const char $name[] = {"
od -An -v -tx1 "$file" | sed -e 's/ *$//' -e 's/^ *//' -e 's/ /, 0x/g' \
    -e 's/^/0x/' -e 's/$/,/' -e '/^0x,$/d'
echo "0x00 };"
echo "const unsigned long ${name}_len = sizeof($name) - 1;"

#!/bin/sh
# valgrind memcheck as the tests run it, for "$@" (options of valgrind's,
# then the program and its arguments): tests/run-all.sh runs the suite's
# programs with it, and tests/lib/servers.js, under LLMGW_VALGRIND, the
# servers and tools the tests start.  Every error and leak fails the
# process (exit 99).  No gdbserver (--vgdb=no): its file in /tmp is named
# by pid, and one left by a process of another user (www-data) made
# valgrind fail for a new process that got the same pid.
exec valgrind -q --vgdb=no --error-exitcode=99 --leak-check=full \
    --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible \
    --suppressions="$(dirname "$0")/valgrind.supp" "$@"

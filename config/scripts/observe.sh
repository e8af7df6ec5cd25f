#!/bin/sh
# Demo observer: prints the running version of SERVICE in ENV, or nothing when it is not running.
cat "state/$1/$2" 2>/dev/null || true

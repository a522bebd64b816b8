# Sourced by bench/memory.sh and bench/probe.sh.
# How far the kernel reads ahead on the disk holding file $1: it decides how
# much of the binary a fault brings in, and so its resident code
# (docs/performance.md, memory).
readahead() { local dev; dev=$(stat -c '%Hd:%Ld' "$1"); cat "/sys/dev/block/$dev/queue/read_ahead_kb" 2>/dev/null || cat "/sys/dev/block/$dev/../queue/read_ahead_kb" 2>/dev/null || echo "?"; }
# Runs start from a cold page cache, as a container does, when the bench may
# drop it (root): a binary just built is in the cache whole and is mapped
# whole (docs/performance.md, memory).
cold_cache() { if [ -w /proc/sys/vm/drop_caches ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi; }

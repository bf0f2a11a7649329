#!/bin/bash
# Stop everything up.sh started. Each daemon was started with setsid, so its pid file holds a
# session/process-group leader: signal that group only (never by process name).
S=${STACK_DIR:-/var/tmp/autoscaler-openstack}; mkdir -p "$S"
cd $S || exit 0
SVCS="nova-compute nova-api nova-conductor nova-scheduler neutron-server glance-api placement keystone rabbit mysqld"
alive() { [ -n "$1" ] && [ "$(ps -o sid= -p "$1" 2>/dev/null | tr -d ' ')" = "$1" ]; }
pids=()
for s in $SVCS; do
  f=run/$s.pid; [ -f $f ] || continue; p=$(cat $f)
  if alive "$p"; then kill -TERM -- -"$p" 2>/dev/null && pids+=("$p") && echo "TERM $s (pgid $p)"; fi
done
for i in $(seq 1 20); do
  left=(); for p in "${pids[@]}"; do kill -0 -- -"$p" 2>/dev/null && left+=("$p"); done
  [ ${#left[@]} -eq 0 ] && break; sleep 0.5
done
for p in "${left[@]:-}"; do [ -n "$p" ] && kill -KILL -- -"$p" 2>/dev/null && echo "KILL pgid $p"; done
# epmd daemonizes into its own session: ask it to exit (it only serves our port 5070)
if [ -f rabbit-env.sh ]; then
  ( . ./rabbit-env.sh; /usr/lib/erlang/erts-*/bin/epmd -port 5070 -kill >/dev/null 2>&1 ) || true
fi
rm -f run/*.pid
echo "down."

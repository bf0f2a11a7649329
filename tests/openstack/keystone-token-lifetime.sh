#!/bin/bash
# Restart only Keystone of a running loopback stack with a new token lifetime (seconds), for
# the token renewal test. Usage: keystone-token-lifetime.sh SECONDS   (STACK_DIR as in up.sh)
# Other services keep running; their own keystoneauth sessions renew as needed.
set -euo pipefail
SECS=${1:?usage: keystone-token-lifetime.sh SECONDS}
S=${STACK_DIR:-/var/tmp/autoscaler-openstack}
cd "$S"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
sed -i "s/^expiration = .*/expiration = $SECS/" etc/keystone.conf
p=$(cat run/keystone.pid)
kill -TERM -- -"$p" 2>/dev/null || true
for _ in $(seq 1 50); do kill -0 -- -"$p" 2>/dev/null || break; sleep 0.2; done
kill -KILL -- -"$p" 2>/dev/null || true
# Same command line as up.sh (see the comment there about Connection:close).
setsid uwsgi --plugin python3 --master --processes 2 --threads 1 --die-on-term --lazy-apps \
  --add-header Connection:close --http-socket 127.0.0.1:5000 --wsgi-file /usr/bin/keystone-wsgi-public \
  --pidfile "$S/run/keystone-uwsgi.pid" --env OS_KEYSTONE_CONFIG_FILES="$S/etc/keystone.conf" \
  > "$S/log/keystone-console.log" 2>&1 < /dev/null &
echo $! > run/keystone.pid
for _ in $(seq 1 300); do curl -s -o /dev/null --max-time 2 http://127.0.0.1:5000/v3 && break; sleep 0.2; done
curl -s -o /dev/null --max-time 2 http://127.0.0.1:5000/v3 || { echo "keystone did not come back" >&2; exit 1; }
echo "keystone restarted with token expiration = $SECS s"

#!/bin/bash
# Bring up a real (Debian bookworm / OpenStack Zed) control plane on loopback:
#   MariaDB (unix socket only), RabbitMQ, Keystone, Placement, Glance, Neutron (ML2 +
#   agent-less "fakebind" mech driver), Nova api/conductor/scheduler/compute (fake virt driver).
# Every service listens on 127.0.0.1 only. Wipes previous state unless KEEP_STATE=1 (then it
# only (re)starts the daemons). Usage: ./up.sh   then: source run/appcred.env  or OS_CLOUD=demo
# Environment: STACK_DIR (state folder, default /var/tmp/autoscaler-openstack), KEEP_STATE=1,
# TOKEN_EXPIRATION (Keystone token lifetime in seconds, default 86400; see keystone-token-lifetime.sh
# to change it on a running stack), NOVA_COMPUTE_DRIVER (default fake.FakeDriver).
# Adopted from the shared openstack-loopback reference; owned by the autoscaler project now.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
S=${STACK_DIR:-/var/tmp/autoscaler-openstack}; mkdir -p "$S"
cd $S
T0=$(date +%s)
ts() { echo "[$(( $(date +%s) - T0 ))s] $*"; }
PY=/usr/bin/python3            # NOT the pyenv python3 that is first on PATH
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export OS_CLIENT_CONFIG_FILE=$S/clouds.yaml
DBURL="mysql+pymysql://os:os@localhost/%s?unix_socket=$S/run/mysqld.sock&charset=utf8"
db() { printf "$DBURL" "$1"; }

# ---------------------------------------------------------------- 1. packages
PKGS="python3-keystone python3-nova python3-glance python3-placement python3-neutron
 python3-openstackclient python3-novaclient python3-neutronclient python3-pymysql
 rabbitmq-server mariadb-server uwsgi-core uwsgi-plugin-python3 jq bc curl openssh-client"
missing=$(for p in $PKGS; do dpkg-query -W -f='${Status}\n' $p 2>/dev/null | grep -q 'ok installed' || echo $p; done)
if [ -n "$missing" ]; then
  ts "apt-get install: $missing"
  # policy-rc.d (exit 101) keeps Debian from starting rabbitmq/mariadb system-wide
  # (another process may hold the apt/dpkg locks: retry; DPkg::Lock::Timeout covers dpkg)
  for i in $(seq 1 60); do apt-get -o DPkg::Lock::Timeout=1200 -y update >/dev/null 2>&1 && break; sleep 10; done
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=1200 install -y \
     --no-install-recommends $missing > $S/apt-install.log 2>&1
fi
# api-paste.ini files live in nova-common/glance-common/neutron-common, which we do not
# install (dbconfig/debconf); just unpack them.
if [ ! -f $S/debs/x/usr/share/nova-common/api-paste.ini ]; then
  ts "fetching paste.ini files (apt-get download *-common)"
  mkdir -p $S/debs && (cd $S/debs && apt-get download nova-common glance-common neutron-common >/dev/null 2>&1 \
     && for d in *.deb; do dpkg-deb -x $d x; done)
fi

# ---------------------------------------------------------------- 2. state
if [ "${KEEP_STATE:-0}" != 1 ]; then
  STACK_DIR=$S "$HERE/down.sh" >/dev/null 2>&1 || true
  rm -rf $S/data $S/log $S/run
fi
mkdir -p $S/{etc,bin,data,log,run} $S/etc/{nova,glance,placement,neutron/plugins/ml2} \
  $S/data/{keystone-fernet,keystone-fernet-receipts,keystone-credential,rabbit-home,rabbit-mnesia} \
  $S/data/glance/{images,staging,tasks} $S/data/nova/{instances,lock} $S/data/neutron/lock $S/log/rabbit
FRESH=0; [ -d $S/data/mysql ] || FRESH=1

# ---------------------------------------------------------------- 3. config files
mk() { printf '#!/usr/bin/python3\nimport sys\nfrom %s import %s\nsys.exit(%s())\n' "$2" "$3" "$3" > bin/$1; chmod +x bin/$1; }
mk nova-manage nova.cmd.manage main; mk nova-api nova.cmd.api main
mk nova-conductor nova.cmd.conductor main; mk nova-scheduler nova.cmd.scheduler main
mk nova-compute nova.cmd.compute main; mk glance-manage glance.cmd.manage main
mk glance-api glance.cmd.api main; mk neutron-server neutron.cmd.eventlet.server main
mk neutron-db-manage neutron.db.migration.cli main
cp debs/x/usr/share/nova-common/api-paste.ini etc/nova/api-paste.ini
cp debs/x/usr/share/glance-common/glance-api-paste.ini etc/glance/glance-api-paste.ini
cp debs/x/usr/share/neutron-common/api-paste.ini etc/neutron/api-paste.ini

cat > etc/my.cnf <<EOF
[mysqld]
user = root
datadir = $S/data/mysql
socket = $S/run/mysqld.sock
pid-file = $S/run/mysqld.pid
log-error = $S/log/mysqld.log
skip-networking
max_connections = 500
innodb_buffer_pool_size = 128M
innodb_flush_log_at_trx_commit = 0
innodb_doublewrite = 0
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
skip-name-resolve
[client]
socket = $S/run/mysqld.sock
user = root
EOF

cat > rabbit-env.sh <<EOF
# RabbitMQ + Erlang confined to loopback and ports 5070-5079 / 5672
export HOME=$S/data/rabbit-home
export RABBITMQ_NODENAME=rabbit@localhost
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=5672 RABBITMQ_DIST_PORT=5071
export ERL_EPMD_PORT=5070 ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_CTL_DIST_PORT_MIN=5072 RABBITMQ_CTL_DIST_PORT_MAX=5079
export RABBITMQ_MNESIA_BASE=$S/data/rabbit-mnesia RABBITMQ_LOG_BASE=$S/log/rabbit
export RABBITMQ_CONFIG_FILE=$S/etc/rabbitmq RABBITMQ_ENABLED_PLUGINS_FILE=$S/etc/rabbitmq-enabled-plugins
export RABBITMQ_PID_FILE=$S/run/rabbitmq.pid
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
printf 'listeners.tcp.default = 127.0.0.1:5672\nloopback_users = none\n' > etc/rabbitmq.conf
echo '[].' > etc/rabbitmq-enabled-plugins
TRANSPORT=rabbit://guest:guest@127.0.0.1:5672/

authtoken() { cat <<EOF
[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:5000/
auth_url = http://127.0.0.1:5000/
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $1
EOF
}
svcauth() { cat <<EOF
[$1]
region_name = RegionOne
auth_type = password
auth_url = http://127.0.0.1:5000/v3
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $2
password = $2
EOF
}

cat > etc/keystone.conf <<EOF
[DEFAULT]
log_file = $S/log/keystone.log
[database]
connection = $(db keystone)
[identity]
# bcrypt default is 12 rounds (~0.25 s per password check); 4 is the minimum
password_hash_rounds = 4
[token]
provider = fernet
expiration = ${TOKEN_EXPIRATION:-86400}
[fernet_tokens]
key_repository = $S/data/keystone-fernet
[fernet_receipts]
key_repository = $S/data/keystone-fernet-receipts
[credential]
key_repository = $S/data/keystone-credential
EOF

{ cat <<EOF
[DEFAULT]
log_file = $S/log/placement.log
[placement_database]
connection = $(db placement)
[api]
auth_strategy = keystone
EOF
authtoken placement; } > etc/placement/placement.conf

{ cat <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9292
workers = 1
log_file = $S/log/glance-api.log
enabled_backends = fs:file
transport_url = $TRANSPORT
[database]
connection = $(db glance)
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $S/data/glance/images
[os_glance_staging_store]
filesystem_store_datadir = $S/data/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = $S/data/glance/tasks
[paste_deploy]
flavor = keystone
config_file = $S/etc/glance/glance-api-paste.ini
[oslo_messaging_notifications]
driver = noop
EOF
authtoken glance; } > etc/glance/glance-api.conf

{ cat <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9296
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 1
core_plugin = ml2
service_plugins =
auth_strategy = keystone
api_paste_config = $S/etc/neutron/api-paste.ini
state_path = $S/data/neutron
log_file = $S/log/neutron-server.log
transport_url = $TRANSPORT
dhcp_agent_notification = false
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
[database]
connection = $(db neutron)
[oslo_concurrency]
lock_path = $S/data/neutron/lock
[oslo_messaging_notifications]
driver = noop
EOF
authtoken neutron; svcauth nova nova; } > etc/neutron/neutron.conf
cat > etc/neutron/plugins/ml2/ml2_conf.ini <<EOF
[ml2]
type_drivers = flat,vxlan
tenant_network_types = vxlan
# agent-less binder from $S/pylib (registered through a .dist-info entry point)
mechanism_drivers = fakebind
extension_drivers = port_security
[ml2_type_flat]
flat_networks = public
[ml2_type_vxlan]
vni_ranges = 1:1000
EOF
mkdir -p pylib/loopback_fakebind pylib/loopback_fakebind-0.1.dist-info
cat > pylib/loopback_fakebind/__init__.py <<'EOF'
"""ML2 mechanism driver that binds every port on every host without any L2 agent.

Test-only: ports get vif_type 'ovs' and status ACTIVE so that nova (fake virt
driver) can boot servers on real Neutron networks/ports.
"""
from neutron_lib.api.definitions import portbindings
from neutron_lib import constants
from neutron_lib.plugins.ml2 import api


class FakeBindMechanismDriver(api.MechanismDriver):
    def initialize(self):
        pass

    @property
    def connectivity(self):
        return portbindings.CONNECTIVITY_L2

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OVS,
                                {portbindings.CAP_PORT_FILTER: True,
                                 portbindings.OVS_HYBRID_PLUG: False},
                                status=constants.PORT_STATUS_ACTIVE)
            return
EOF
printf 'Metadata-Version: 2.1\nName: loopback-fakebind\nVersion: 0.1\n' > pylib/loopback_fakebind-0.1.dist-info/METADATA
printf '[neutron.ml2.mechanism_drivers]\nfakebind = loopback_fakebind:FakeBindMechanismDriver\n' > pylib/loopback_fakebind-0.1.dist-info/entry_points.txt

{ cat <<EOF
[DEFAULT]
host = loopback-compute
my_ip = 127.0.0.1
state_path = $S/data/nova
instances_path = $S/data/nova/instances
log_dir = $S/log
transport_url = $TRANSPORT
compute_driver = ${NOVA_COMPUTE_DRIVER:-fake.FakeDriver}
enabled_apis = osapi_compute
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = 8774
osapi_compute_workers = 1
use_rootwrap_daemon = false
heal_instance_info_cache_interval = -1
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = $S/etc/nova/api-paste.ini
[api_database]
connection = $(db nova_api)
[database]
connection = $(db nova)
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 10
[service_user]
send_service_user_token = false
[glance]
region_name = RegionOne
[cinder]
os_region_name = RegionOne
[vnc]
enabled = false
[spice]
enabled = false
[oslo_concurrency]
lock_path = $S/data/nova/lock
[oslo_messaging_notifications]
driver = noop
EOF
authtoken nova; svcauth placement placement; svcauth neutron neutron
echo "service_metadata_proxy = false"; } > etc/nova/nova.conf

cat > clouds.yaml <<EOF
clouds:
  admin:
    auth: {auth_url: 'http://127.0.0.1:5000/v3', username: admin, password: admin, project_name: admin, user_domain_name: Default, project_domain_name: Default}
    region_name: RegionOne
    identity_api_version: 3
  demo:
    auth: {auth_url: 'http://127.0.0.1:5000/v3', username: demo, password: demo, project_name: demo, user_domain_name: Default, project_domain_name: Default}
    region_name: RegionOne
    identity_api_version: 3
EOF
[ -f data/test_key ] || ssh-keygen -q -t ed25519 -N '' -f data/test_key

# ---------------------------------------------------------------- 4. helpers
start() { # name cmd... : own session (setsid) so down.sh can kill the whole group
  local n=$1; shift
  setsid "$@" > $S/log/$n-console.log 2>&1 < /dev/null &
  echo $! > $S/run/$n.pid
}
wait_http() { # url [timeout]
  local i; for i in $(seq 1 $(( ${2:-60} * 5 ))); do
    curl -s -o /dev/null --max-time 2 "$1" && return 0; sleep 0.2; done
  echo "timeout waiting for $1" >&2; return 1
}
UWSGI="uwsgi --plugin python3 --master --processes 2 --threads 1 --die-on-term --lazy-apps"
# uwsgi --http-socket does not do keep-alive; without this header keystoneauth reuses the
# closed connection and gets 'Connection reset by peer'.
UWSGI="$UWSGI --add-header Connection:close"

# ---------------------------------------------------------------- 5. MariaDB + RabbitMQ
[ $FRESH = 1 ] && { ts "mariadb-install-db"; mariadb-install-db --defaults-file=$S/etc/my.cnf --auth-root-authentication-method=normal > log/mysql-install.log 2>&1; }
ts "starting mariadb + rabbitmq"
start mysqld mariadbd --defaults-file=$S/etc/my.cnf
( . ./rabbit-env.sh; start rabbit /usr/lib/rabbitmq/bin/rabbitmq-server )
for i in $(seq 1 100); do [ -S run/mysqld.sock ] && mariadb --defaults-file=etc/my.cnf -e 'select 1' >/dev/null 2>&1 && break; sleep 0.2; done
if [ $FRESH = 1 ]; then
  mariadb --defaults-file=etc/my.cnf -e "CREATE USER IF NOT EXISTS 'os'@'localhost' IDENTIFIED BY 'os'; GRANT ALL ON *.* TO 'os'@'localhost';
    $(for d in keystone glance placement nova_api nova nova_cell0 neutron; do echo "CREATE DATABASE IF NOT EXISTS $d;"; done)"

  # ---------------------------------------------------------------- 6. DB schemas (parallel)
  ts "db syncs (parallel)"
  KM="keystone-manage --config-file $S/etc/keystone.conf"
  ( $KM db_sync && $KM fernet_setup --keystone-user root --keystone-group root \
    && $KM credential_setup --keystone-user root --keystone-group root \
    && $KM bootstrap --bootstrap-password admin --bootstrap-username admin --bootstrap-project-name admin \
       --bootstrap-role-name admin --bootstrap-service-name keystone --bootstrap-region-id RegionOne \
       --bootstrap-admin-url http://127.0.0.1:5000/v3/ --bootstrap-internal-url http://127.0.0.1:5000/v3/ \
       --bootstrap-public-url http://127.0.0.1:5000/v3/ ) > log/keystone-manage.log 2>&1 & P1=$!
  placement-manage --config-dir $S/etc/placement db sync > log/placement-manage.log 2>&1 & P2=$!
  bin/glance-manage --config-file etc/glance/glance-api.conf db_sync > log/glance-manage.log 2>&1 & P3=$!
  bin/neutron-db-manage --config-file etc/neutron/neutron.conf --config-file etc/neutron/plugins/ml2/ml2_conf.ini \
     upgrade heads > log/neutron-db-manage.log 2>&1 & P4=$!
  NM="bin/nova-manage --config-file $S/etc/nova/nova.conf"
  ( $NM api_db sync && $NM cell_v2 map_cell0 --database_connection "$(db nova_cell0)" \
    && $NM cell_v2 create_cell --name=cell1 && $NM db sync ) > log/nova-manage-console.log 2>&1 & P5=$!
  for p in $P1 $P2 $P3 $P4 $P5; do wait $p || { echo "db sync failed (pid $p), see $S/log/*manage*.log" >&2; exit 1; }; done
fi

# ---------------------------------------------------------------- 7. API services
ts "starting keystone"
start keystone $UWSGI --http-socket 127.0.0.1:5000 --wsgi-file /usr/bin/keystone-wsgi-public \
   --pidfile $S/run/keystone-uwsgi.pid --env OS_KEYSTONE_CONFIG_FILES=$S/etc/keystone.conf
wait_http http://127.0.0.1:5000/v3 90
# service users must exist before nova-conductor starts (it exits if placement auth fails)
[ $FRESH = 1 ] && { ts "seeding keystone"; $PY $HERE/seed.py identity; }
ts "starting placement, glance, neutron, nova"
start placement $UWSGI --http-socket 127.0.0.1:8778 --wsgi-file /usr/bin/placement-api \
   --pidfile $S/run/placement-uwsgi.pid --env OS_PLACEMENT_CONFIG_DIR=$S/etc/placement
start glance-api bin/glance-api --config-file etc/glance/glance-api.conf
start neutron-server env PYTHONPATH=$S/pylib bin/neutron-server --config-file etc/neutron/neutron.conf \
   --config-file etc/neutron/plugins/ml2/ml2_conf.ini
for s in nova-conductor nova-scheduler nova-api nova-compute; do start $s bin/$s --config-file etc/nova/nova.conf; done
wait_http http://127.0.0.1:8778/ 90; wait_http http://127.0.0.1:9292/ 90
wait_http http://127.0.0.1:9296/ 90; wait_http http://127.0.0.1:8774/ 90

# ---------------------------------------------------------------- 8. compute host discovery
ts "waiting for nova-compute to register"
q() { mariadb --defaults-file=etc/my.cnf -N -e "$1" 2>/dev/null || echo 0; }
for i in $(seq 1 240); do [ "$(q 'select count(*) from nova.compute_nodes where deleted=0')" -ge 1 ] && break; sleep 0.5; done
bin/nova-manage --config-file etc/nova/nova.conf cell_v2 discover_hosts > log/discover-hosts.log 2>&1
for i in $(seq 1 240); do [ "$(q 'select count(*) from placement.inventories')" -ge 1 ] && break; sleep 0.5; done
[ "$(q 'select count(*) from nova_api.host_mappings')" -ge 1 ] || { echo "nova-compute did not register; see $S/log/nova-*.log" >&2; exit 1; }
[ $FRESH = 1 ] && { ts "seeding resources"; $PY $HERE/seed.py resources; }
bad=0; for s in mysqld rabbit keystone placement glance-api neutron-server nova-api nova-conductor nova-scheduler nova-compute; do
  kill -0 $(cat run/$s.pid) 2>/dev/null || { echo "service $s is not running (log/$s*.log)" >&2; bad=1; }; done
[ $bad = 0 ] || exit 1
ts "UP. OS_CLIENT_CONFIG_FILE=$S/clouds.yaml OS_CLOUD=demo|admin, or: source $S/run/appcred.env"

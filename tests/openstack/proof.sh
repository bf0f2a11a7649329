#!/bin/bash
# Exercise the APIs the autoscaler needs with plain curl (+ jq). Run after up.sh.
set -u
S=${STACK_DIR:-/var/tmp/autoscaler-openstack}; mkdir -p "$S"; cd $S
export OS_CLIENT_CONFIG_FILE=$S/clouds.yaml
K=http://127.0.0.1:5000/v3 N=http://127.0.0.1:8774/v2.1 G=http://127.0.0.1:9292 Q=http://127.0.0.1:9296
say() { echo; echo "### $*"; }
tok_pw() { # user pass project -> token
  curl -s -i -X POST $K/auth/tokens -H 'Content-Type: application/json' -d '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"'$1'","domain":{"name":"Default"},"password":"'$2'"}}},"scope":{"project":{"name":"'$3'","domain":{"name":"Default"}}}}}' | awk 'tolower($1)=="x-subject-token:"{print $2}' | tr -d '\r'; }

say "1. Keystone password auth (demo) + service catalog"
R=$(curl -s -D $S/run/h.txt -X POST $K/auth/tokens -H 'Content-Type: application/json' -d '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"demo","domain":{"name":"Default"},"password":"demo"}}},"scope":{"project":{"name":"demo","domain":{"name":"Default"}}}}}')
DT=$(awk 'tolower($1)=="x-subject-token:"{print $2}' run/h.txt | tr -d '\r')
head -1 run/h.txt; echo "$R" | jq -c '[.token.catalog[] | {type, public: ([.endpoints[]|select(.interface=="public")|.url][0])}]'
AT=$(tok_pw admin admin admin)

say "2. Application credential create + auth with it"
AC=$(curl -s -X POST $K/users/$(echo "$R" | jq -r .token.user.id)/application_credentials -H "X-Auth-Token: $DT" -H 'Content-Type: application/json' -d '{"application_credential":{"name":"ac-'$RANDOM'","secret":"s3cret"}}')
ACID=$(echo "$AC" | jq -r .application_credential.id); echo "app cred id: $ACID"
curl -s -D run/h2.txt -o run/ac_tok.json -X POST $K/auth/tokens -H 'Content-Type: application/json' -d '{"auth":{"identity":{"methods":["application_credential"],"application_credential":{"id":"'$ACID'","secret":"s3cret"}}}}'
head -1 run/h2.txt; jq -c '{methods: .token.methods, project: .token.project.name, catalog_types: [.token.catalog[].type]}' run/ac_tok.json
T=$(awk 'tolower($1)=="x-subject-token:"{print $2}' run/h2.txt | tr -d '\r')

say "3. Glance: list images by name"
curl -s "$G/v2/images?name=fake-image" -H "X-Auth-Token: $T" | jq -c '[.images[] | {id, name, status}]'
IMG=$(curl -s "$G/v2/images?name=fake-image" -H "X-Auth-Token: $T" | jq -r '.images[0].id')

say "4. Neutron: list networks by name"
curl -s "$Q/v2.0/networks?name=runner-net" -H "X-Auth-Token: $T" | jq -c '[.networks[] | {id, name, status, shared}]'
NET=$(curl -s "$Q/v2.0/networks?name=runner-net" -H "X-Auth-Token: $T" | jq -r '.networks[0].id')
FLV=$(curl -s "$N/flavors" -H "X-Auth-Token: $T" | jq -r '.flavors[]|select(.name=="m1.small")|.id')

say "5. Nova: create server (microversion 2.52: tags in create), user_data base64, metadata, key_name, security_groups"
UD=$(printf '#!/bin/sh\necho hello-from-user-data\n' | base64 -w0)
CR=$(curl -s -w '\nHTTP %{http_code}' -X POST $N/servers -H "X-Auth-Token: $T" -H 'Content-Type: application/json' -H 'OpenStack-API-Version: compute 2.52' -d '{"server":{"name":"curl-runner-1","flavorRef":"'$FLV'","imageRef":"'$IMG'","networks":[{"uuid":"'$NET'"}],"user_data":"'$UD'","metadata":{"managed-by":"autoscaler","pool":"demo"},"key_name":"k1","security_groups":[{"name":"runner-sg"}],"tags":["autoscaler","pool-demo"]}}')
echo "$CR" | tail -1; SID=$(echo "$CR" | head -1 | jq -r .server.id); echo "server id: $SID"
t0=$(date +%s.%N)
for i in $(seq 1 60); do ST=$(curl -s $N/servers/$SID -H "X-Auth-Token: $T" | jq -r .server.status); [ "$ST" = ACTIVE -o "$ST" = ERROR ] && break; sleep 0.5; done
echo "status=$ST after $(echo "$(date +%s.%N) - $t0" | bc) s"

say "6. List servers with filters (detail, name regex, tags, status)"
curl -s "$N/servers/detail?name=^curl-runner&status=ACTIVE" -H "X-Auth-Token: $T" -H 'OpenStack-API-Version: compute 2.52' | jq -c '[.servers[] | {id, name, status, metadata, tags, key_name, addresses}]'
curl -s "$N/servers?tags=autoscaler" -H "X-Auth-Token: $T" -H 'OpenStack-API-Version: compute 2.26' | jq -c '[.servers[] | .name]'

say "7. user_data round trip (admin, microversion >=2.3: OS-EXT-SRV-ATTR:user_data) and metadata"
curl -s $N/servers/$SID -H "X-Auth-Token: $AT" -H 'OpenStack-API-Version: compute 2.3' | jq -r '.server["OS-EXT-SRV-ATTR:user_data"]' | base64 -d
curl -s $N/servers/$SID/metadata -H "X-Auth-Token: $T" | jq -c .

say "8. Server tags API (2.26)"
curl -s -o /dev/null -w 'PUT tag: HTTP %{http_code}\n' -X PUT $N/servers/$SID/tags/extra -H "X-Auth-Token: $T" -H 'OpenStack-API-Version: compute 2.26'
curl -s $N/servers/$SID/tags -H "X-Auth-Token: $T" -H 'OpenStack-API-Version: compute 2.26' | jq -c .

say "9. Max microversion"
curl -s $N/ -H "X-Auth-Token: $T" | jq -c '.version | {id, min_version, version}'

say "10. Quota: set demo instances quota to 2, then try to exceed it"
DP=$(echo "$R" | jq -r .token.project.id)
curl -s -X PUT $N/os-quota-sets/$DP -H "X-Auth-Token: $AT" -H 'Content-Type: application/json' -d '{"quota_set":{"instances":2}}' | jq -c '.quota_set | {instances}'
for n in 2 3; do
  curl -s -w '\nHTTP %{http_code}\n' -X POST $N/servers -H "X-Auth-Token: $T" -H 'Content-Type: application/json' -H 'OpenStack-API-Version: compute 2.52' -d '{"server":{"name":"curl-runner-'$n'","flavorRef":"'$FLV'","imageRef":"'$IMG'","networks":[{"uuid":"'$NET'"}]}}' | jq -c -R 'fromjson? // .' | cut -c1-300
done

say "11. ERROR state: (a) admin os-resetState, (b) NoValidHost via oversized flavor"
curl -s -o /dev/null -w 'resetState: HTTP %{http_code}\n' -X POST $N/servers/$SID/action -H "X-Auth-Token: $AT" -H 'Content-Type: application/json' -d '{"os-resetState":{"state":"error"}}'
curl -s $N/servers/$SID -H "X-Auth-Token: $T" | jq -c '.server | {status}'
curl -s -X PUT $N/os-quota-sets/$DP -H "X-Auth-Token: $AT" -H 'Content-Type: application/json' -d '{"quota_set":{"instances":10,"cores":5000}}' >/dev/null
HUGE=$(curl -s "$N/flavors" -H "X-Auth-Token: $T" | jq -r '.flavors[]|select(.name=="huge")|.id')
E=$(curl -s -X POST $N/servers -H "X-Auth-Token: $T" -H 'Content-Type: application/json' -d '{"server":{"name":"curl-novalidhost","flavorRef":"'$HUGE'","imageRef":"'$IMG'","networks":[{"uuid":"'$NET'"}]}}' | jq -r .server.id)
for i in $(seq 1 40); do ST=$(curl -s $N/servers/$E -H "X-Auth-Token: $T" | jq -r .server.status); [ "$ST" = ERROR ] && break; sleep 0.5; done
curl -s $N/servers/$E -H "X-Auth-Token: $T" | jq -c '.server | {status, fault: .fault.message}'

say "12. Delete servers"
for id in $(curl -s "$N/servers?name=^curl-" -H "X-Auth-Token: $T" | jq -r '.servers[].id'); do
  curl -s -o /dev/null -w "DELETE $id: HTTP %{http_code}\n" -X DELETE $N/servers/$id -H "X-Auth-Token: $T"; done
for i in $(seq 1 40); do C=$(curl -s "$N/servers?name=^curl-" -H "X-Auth-Token: $T" | jq '.servers|length'); [ "$C" = 0 ] && break; sleep 0.5; done
echo "remaining curl-* servers: $C"; curl -s -o /dev/null -w 'GET deleted server: HTTP %{http_code}\n' $N/servers/$SID -H "X-Auth-Token: $T"
curl -s -X PUT $N/os-quota-sets/$DP -H "X-Auth-Token: $AT" -H 'Content-Type: application/json' -d '{"quota_set":{"instances":10,"cores":20}}' >/dev/null

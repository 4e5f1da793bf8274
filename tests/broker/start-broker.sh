#!/usr/bin/env bash
# A Mosquitto for the tests and benchmarks, on loopback, configured as a unit's broker
# should be (docs/network.md): TLS with a throwaway CA, a password for every client, and
# an ACL under which a bed publishes only under its own topic.
#
#   tests/broker/start-broker.sh DIR PORT [BEDS]
#
# DIR gets the CA (ca.crt), the configuration, the log and mosquitto.pid. Clients:
# "central" (reads everything), "rogue" (a misbehaving bed, may write only its own
# topic), bed01..bedNN (BEDS, default 40); the password of each is "pw-" + its name.
# Stop it with: kill "$(cat DIR/mosquitto.pid)".
set -euo pipefail
dir=$(mkdir -p "$1" && cd "$1" && pwd)
port=$2
beds=${3:-40}
cd "$dir"

if [ ! -f server.crt ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=monitor test CA" \
        -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 \
        -extfile server.ext -out server.crt 2>/dev/null
fi

{
    echo "central:pw-central"
    echo "rogue:pw-rogue"
    for n in $(seq -w 1 "$beds"); do echo "bed$n:pw-bed$n"; done
} > passwd
mosquitto_passwd -U passwd

cat > acl <<'ACL'
# The central station reads the whole unit.
user central
topic read monitor/#

# A bed (user name = bed name) writes and reads only its own subtree.
pattern readwrite monitor/+/%u/#
ACL

cat > mosquitto.conf <<CONF
listener $port 127.0.0.1
cafile $dir/ca.crt
certfile $dir/server.crt
keyfile $dir/server.key
allow_anonymous false
password_file $dir/passwd
acl_file $dir/acl
persistence true
persistence_location $dir/
log_dest file $dir/mosquitto.log
pid_file $dir/mosquitto.pid
user $(id -un)
max_queued_messages 100000
CONF

"$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c mosquitto.conf -d
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        exit 0
    fi
    sleep 0.1
done
echo "mosquitto did not listen on 127.0.0.1:$port; its log:" >&2
tail -20 "$dir/mosquitto.log" >&2 || true
exit 1

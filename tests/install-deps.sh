#!/bin/sh
# Installs the Debian packages minikafka needs for building, testing and
# benchmarking, but only those that are missing. Called by every Makefile
# target that builds, so a fresh Debian machine needs nothing by hand.
set -eu
need="gcc make pkg-config libfuse3-dev fuse3 libuv1-dev libxxhash-dev libcriterion-dev attr valgrind e2fsprogs util-linux coreutils procps psmisc python3 iptables libsodium-dev clang zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev kcat python3-confluent-kafka python3-kafka librdkafka-dev redis-server redis-tools"
missing=""
for p in $need; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in *"ok installed"*) ;; *) missing="$missing $p" ;; esac
done
# kafkajs (the Kafka tests' JavaScript client) comes from npm: node and npm
# from Debian unless some node is there already.
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing >/dev/null

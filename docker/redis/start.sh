#!/bin/sh
# Starts Redis with redis.conf and an ACL file written from the user lines of users.acl, in which
# each #{VAR} becomes # and the SHA-256 of the environment variable VAR. The passwords come from .env through
# compose, so neither this repository nor an image holds one, and no character of a password can
# break the ACL syntax: only its hash is written. Arguments go on to redis-server (the tests use
# them to pick a port and a data directory).
set -eu
conf_dir=${REDIS_CONF_DIR:-/usr/local/etc/redis}
acl=${REDIS_ACL_FILE:-/tmp/users.acl}
umask 077
# Redis' ACL file has no comments: only the user lines go over.
grep '^user ' "$conf_dir/users.acl" >"$acl.tmp"
for var in $(grep -v '^#' "$conf_dir/users.acl" | grep -o '#{[A-Z_][A-Z0-9_]*}' | sort -u | sed 's/^#{\(.*\)}$/\1/'); do
	eval "value=\${$var-}"
	if [ -z "$value" ]; then
		echo "start.sh: $var is not set (copy .env.example to .env)" >&2
		exit 1
	fi
	hash=$(printf '%s' "$value" | sha256sum | cut -d' ' -f1)
	sed -i "s/#{$var}/#$hash/g" "$acl.tmp"
done
mv "$acl.tmp" "$acl"
exec redis-server "$conf_dir/redis.conf" --aclfile "$acl" "$@"

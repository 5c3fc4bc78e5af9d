#!/bin/sh
# Run by docker-compose.yml's temporal-setup service (temporalio/admin-tools image) once the
# Temporal server answers: makes sure the namespace exists and has egressgw's search attributes
# (Keyword; the names are in $EGRESSGW_SEARCH_ATTRIBUTES, from contracts/search_attributes.py).
# The `temporal` CLI reads TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE itself. Safe to run again.
set -eu

namespace=${TEMPORAL_NAMESPACE:-default}

tries=0
until temporal operator cluster health >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
        echo "temporal-setup: the server at $TEMPORAL_ADDRESS is not healthy after 60 tries" >&2
        temporal operator cluster health
        exit 1
    fi
    sleep 2
done

if ! temporal operator namespace describe --namespace "$namespace" >/dev/null 2>&1; then
    echo "temporal-setup: creating namespace $namespace"
    temporal operator namespace create --namespace "$namespace"
fi

# A namespace just created takes a few seconds to reach the frontend's namespace cache.
tries=0
until registered=$(temporal operator search-attribute list --namespace "$namespace" 2>&1); do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then
        echo "temporal-setup: cannot list the search attributes of $namespace: $registered" >&2
        exit 1
    fi
    sleep 1
done
for name in $EGRESSGW_SEARCH_ATTRIBUTES; do
    if printf '%s\n' "$registered" | grep -qw -- "$name"; then
        echo "temporal-setup: search attribute $name is registered"
    else
        echo "temporal-setup: registering search attribute $name (Keyword)"
        temporal operator search-attribute create --namespace "$namespace" \
            --name "$name" --type Keyword
    fi
done
echo "temporal-setup: done"

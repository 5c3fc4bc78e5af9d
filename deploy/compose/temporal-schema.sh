#!/bin/sh
# Run by docker-compose.yml's temporal-schema service (temporalio/admin-tools image) before the
# Temporal server starts: creates the persistence and visibility databases on the PostgreSQL
# service and applies every schema version the image ships. Running it again on a set-up
# database changes nothing: existing databases are kept and update-schema applies only versions
# not yet recorded.
set -eu

schema_root=/etc/temporal/schema/postgresql/v12

sql_tool() {
    # SQL_PASSWORD comes from the environment.
    temporal-sql-tool --plugin "$DB" --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}

for pair in temporal:temporal temporal_visibility:visibility; do
    database=${pair%%:*}
    schema=${pair#*:}
    echo "temporal-schema: database $database"
    sql_tool --db "$database" create
    sql_tool --db "$database" setup-schema -v 0.0
    sql_tool --db "$database" update-schema -d "$schema_root/$schema/versioned"
done
echo "temporal-schema: done"

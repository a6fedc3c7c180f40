"""Numbered schema migrations. Each runs in one transaction with its bookkeeping row.

Append new migrations at the end; never edit one that has shipped. SQL stays close to the standard
so the same statements run on DuckLake (see design, "Where it goes past one machine").
"""

from __future__ import annotations

import re

import duckdb

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "entities and insights",
        """
        CREATE TABLE ad_accounts (
            account_id      VARCHAR PRIMARY KEY,
            name            VARCHAR NOT NULL,
            currency        VARCHAR NOT NULL,
            timezone_name   VARCHAR NOT NULL,
            account_status  VARCHAR,
            updated_at      TIMESTAMP NOT NULL
        );
        CREATE TABLE campaigns (
            campaign_id      VARCHAR PRIMARY KEY,
            account_id       VARCHAR NOT NULL,
            name             VARCHAR NOT NULL,
            status           VARCHAR,
            effective_status VARCHAR,
            objective        VARCHAR,
            daily_budget     DECIMAL(18, 2),
            lifetime_budget  DECIMAL(18, 2),
            created_time     TIMESTAMP,
            updated_at       TIMESTAMP NOT NULL
        );
        CREATE TABLE adsets (
            adset_id          VARCHAR PRIMARY KEY,
            account_id        VARCHAR NOT NULL,
            campaign_id       VARCHAR NOT NULL,
            name              VARCHAR NOT NULL,
            status            VARCHAR,
            effective_status  VARCHAR,
            optimization_goal VARCHAR,
            billing_event     VARCHAR,
            daily_budget      DECIMAL(18, 2),
            lifetime_budget   DECIMAL(18, 2),
            age_min           INTEGER,
            age_max           INTEGER,
            genders           VARCHAR,
            countries         VARCHAR,
            placements        VARCHAR,
            targeting_json    VARCHAR,
            created_time      TIMESTAMP,
            updated_at        TIMESTAMP NOT NULL
        );
        CREATE TABLE ads (
            ad_id            VARCHAR PRIMARY KEY,
            account_id       VARCHAR NOT NULL,
            campaign_id      VARCHAR NOT NULL,
            adset_id         VARCHAR NOT NULL,
            name             VARCHAR NOT NULL,
            status           VARCHAR,
            effective_status VARCHAR,
            creative_id      VARCHAR,
            created_time     TIMESTAMP,
            updated_at       TIMESTAMP NOT NULL
        );
        CREATE TABLE meta_ad_insights (
            account_id          VARCHAR NOT NULL,
            entity_type         VARCHAR NOT NULL CHECK (entity_type IN ('campaign', 'adset', 'ad')),
            entity_id           VARCHAR NOT NULL,
            campaign_id         VARCHAR,
            adset_id            VARCHAR,
            ad_id               VARCHAR,
            date_start          DATE NOT NULL,
            date_end            DATE NOT NULL,
            spend               DECIMAL(18, 2) NOT NULL,
            impressions         BIGINT NOT NULL,
            clicks              BIGINT NOT NULL,
            conversions         DECIMAL(18, 2) NOT NULL,
            revenue             DECIMAL(18, 2) NOT NULL,
            reach               BIGINT,
            unique_clicks       BIGINT,
            frequency           DOUBLE,
            created_at          TIMESTAMP NOT NULL,
            updated_at          TIMESTAMP NOT NULL,
            -- the seed's per-row ratios and uuid-shaped id, derived from the row and stored nowhere:
            -- formulas as in insights_core.metrics.RATIO_FORMULAS, NULL for a zero denominator
            ctr                 DOUBLE GENERATED ALWAYS AS (CAST(clicks AS DOUBLE) / NULLIF(impressions, 0) * 100) VIRTUAL,
            cpc                 DOUBLE GENERATED ALWAYS AS (CAST(spend AS DOUBLE) / NULLIF(clicks, 0)) VIRTUAL,
            cpm                 DOUBLE GENERATED ALWAYS AS (CAST(spend AS DOUBLE) / NULLIF(impressions, 0) * 1000) VIRTUAL,
            roas                DOUBLE GENERATED ALWAYS AS (CAST(revenue AS DOUBLE) / NULLIF(CAST(spend AS DOUBLE), 0)) VIRTUAL,
            cost_per_conversion DOUBLE GENERATED ALWAYS AS (CAST(spend AS DOUBLE) / NULLIF(CAST(conversions AS DOUBLE), 0)) VIRTUAL,
            id                  VARCHAR GENERATED ALWAYS AS (
                substr(md5(entity_type || ':' || entity_id || ':' || CAST(date_start AS VARCHAR)), 1, 8) || '-' ||
                substr(md5(entity_type || ':' || entity_id || ':' || CAST(date_start AS VARCHAR)), 9, 4) || '-' ||
                substr(md5(entity_type || ':' || entity_id || ':' || CAST(date_start AS VARCHAR)), 13, 4) || '-' ||
                substr(md5(entity_type || ':' || entity_id || ':' || CAST(date_start AS VARCHAR)), 17, 4) || '-' ||
                substr(md5(entity_type || ':' || entity_id || ':' || CAST(date_start AS VARCHAR)), 21, 12)
            ) VIRTUAL,
            PRIMARY KEY (entity_type, entity_id, date_start)
        );
        CREATE TABLE synced_days (
            account_id VARCHAR NOT NULL,
            level      VARCHAR NOT NULL,
            day        DATE NOT NULL,
            synced_at  TIMESTAMP NOT NULL,
            PRIMARY KEY (account_id, level, day)
        );
        CREATE TABLE sync_runs (
            sync_id                VARCHAR PRIMARY KEY,
            sync_timestamp         TIMESTAMP NOT NULL,
            sync_type              VARCHAR NOT NULL,
            mode                   VARCHAR NOT NULL,
            status                 VARCHAR NOT NULL,
            success                BOOLEAN NOT NULL,
            since                  DATE,
            until                  DATE,
            days_back              INTEGER,
            entity_type            VARCHAR,
            entity_ids             VARCHAR,
            force                  BOOLEAN NOT NULL,
            campaigns_processed    INTEGER NOT NULL,
            campaigns_success      INTEGER NOT NULL,
            campaigns_errors       INTEGER NOT NULL,
            adsets_processed       INTEGER NOT NULL,
            adsets_success         INTEGER NOT NULL,
            adsets_errors          INTEGER NOT NULL,
            ads_processed          INTEGER NOT NULL,
            ads_success            INTEGER NOT NULL,
            ads_errors             INTEGER NOT NULL,
            total_duration_seconds DOUBLE NOT NULL,
            rows_written           BIGINT NOT NULL,
            rows_inserted          BIGINT NOT NULL,
            rows_updated           BIGINT NOT NULL,
            rows_deleted           BIGINT NOT NULL,
            api_requests           BIGINT NOT NULL,
            rate_limit_hits        INTEGER NOT NULL,
            error_count            INTEGER NOT NULL,
            request_id             BIGINT,
            report_json            VARCHAR NOT NULL
        );
        """,
    ),
    (
        2,
        "sync_runs.rows_written is named rows_read",
        # it counts rows read from the source (inserted, updated or unchanged), not rows written;
        # the column keeps its position, so positional inserts still match
        "ALTER TABLE sync_runs RENAME COLUMN rows_written TO rows_read;",
    ),
    (
        3,
        "synced_days.level is named entity_type, as in meta_ad_insights",
        "ALTER TABLE synced_days RENAME COLUMN level TO entity_type;",
    ),
    (
        4,
        "meta_ad_insight_breakdowns: daily segments (age and gender, country, placement, device)",
        # The key is (entity_type, entity_id, date_start, breakdown, key_1, key_2), kept unique by the
        # upsert's MERGE on those columns (tests check no duplicates) rather than by a PRIMARY KEY: its
        # index lives in memory, and with it a 4,500-ad, 30-day first sync (3.5M segment rows in one
        # transaction) failed with DuckDB "Out of Memory" at the default 512MB limit.
        # key_2 is '' for one-key families, so a key never holds a NULL (NULLs never match in the MERGE);
        # reach is as reported per segment, NULL at levels rolled up from children (it is never summed)
        """
        CREATE TABLE meta_ad_insight_breakdowns (
            entity_type  VARCHAR NOT NULL CHECK (entity_type IN ('campaign', 'adset', 'ad')),
            entity_id    VARCHAR NOT NULL,
            account_id   VARCHAR NOT NULL,
            date_start   DATE NOT NULL,
            breakdown    VARCHAR NOT NULL CHECK (breakdown IN ('age_gender', 'country', 'placement', 'device_platform')),
            key_1        VARCHAR NOT NULL,
            key_2        VARCHAR NOT NULL,
            spend        DECIMAL(18, 2) NOT NULL,
            impressions  BIGINT NOT NULL,
            clicks       BIGINT NOT NULL,
            conversions  DECIMAL(18, 2) NOT NULL,
            revenue      DECIMAL(18, 2) NOT NULL,
            reach        BIGINT,
            created_at   TIMESTAMP NOT NULL,
            updated_at   TIMESTAMP NOT NULL
        );
        """,
    ),
    (
        5,
        "meta_ad_creatives: each ad's creative, with the image kept in the data dir",
        # image_file is a content-addressed name (<sha256>.<ext>) under <data dir>/creatives, NULL
        # while no image was ever kept; image_url is the source's (expiring) URL, never shown
        """
        CREATE TABLE meta_ad_creatives (
            creative_id      VARCHAR PRIMARY KEY,
            account_id       VARCHAR NOT NULL,
            title            VARCHAR,
            body             VARCHAR,
            call_to_action   VARCHAR,
            link_url         VARCHAR,
            image_url        VARCHAR,
            image_file       VARCHAR,
            image_sha256     VARCHAR,
            image_fetched_at TIMESTAMP,
            created_at       TIMESTAMP NOT NULL,
            updated_at       TIMESTAMP NOT NULL
        );
        """,
    ),
    (
        6,
        "campaigns and adsets: start_time and stop_time, the period a lifetime budget is paced over",
        # UTC without a zone, as created_time; NULL stop_time: the entity runs until paused
        """
        ALTER TABLE campaigns ADD COLUMN start_time TIMESTAMP;
        ALTER TABLE campaigns ADD COLUMN stop_time TIMESTAMP;
        ALTER TABLE adsets ADD COLUMN start_time TIMESTAMP;
        ALTER TABLE adsets ADD COLUMN stop_time TIMESTAMP;
        """,
    ),
    (
        7,
        "creative_images: the kept images' bytes, for workers and dashboards on other machines (lake)",
        # On the lake each worker has its own data dir, so images are kept here, content-addressed by
        # image_file (meta_ad_creatives.image_file) and written in the sync's commit. The embedded store
        # keeps them as files (publishing copies the whole file, so bytes here would be copied at every
        # sync): there this table stays empty.
        """
        CREATE TABLE creative_images (
            image_file VARCHAR PRIMARY KEY,
            content    BLOB NOT NULL,
            kept_at    TIMESTAMP NOT NULL
        );
        """,
    ),
]


def ensure_schema(con: duckdb.DuckDBPyConnection, *, lake: bool = False) -> list[int]:
    """Apply every migration not yet applied, each in its own transaction; return the versions applied.

    `lake=True`: the connection's current catalog is a DuckLake, which has no primary keys, CHECK
    constraints or generated columns: each migration runs as `lake_ddl` rewrites it (the same tables
    and stored columns). The caller serialises this against other workers (the lake's commit lock).
    """
    bookkeeping = "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    con.execute(lake_ddl(bookkeeping) if lake else bookkeeping)
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied: list[int] = []
    for version, name, sql in MIGRATIONS:
        if version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(lake_ddl(sql) if lake else sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, current_timestamp::TIMESTAMP)", [version, name])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


def lake_ddl(sql: str) -> str:
    """`sql` without what DuckLake refuses: primary keys, CHECK constraints and generated columns.

    Keys stay unique on the lake by the store's MERGEs and batch checks (as in the embedded
    breakdowns table, see migration 4); the generated ratio columns are derived data that no query
    reads (the pages compute ratios from sums). Shipped migrations never change, so these rewrites
    only have to fit them; a test checks the lake ends with the embedded schema's stored columns.
    """
    sql = re.sub(r"--[^\n]*", "", sql)
    sql = _drop_generated_columns(sql)
    sql = re.sub(r",\s*PRIMARY KEY\s*\([^)]*\)", "", sql)
    sql = re.sub(r"\s+PRIMARY KEY\b", "", sql)
    sql = re.sub(r"\s+CHECK\s*\((?:[^()]|\([^()]*\))*\)", "", sql)
    return sql


_GENERATED = re.compile(r",\s*\w+\s+\w+\s+GENERATED ALWAYS AS\s*\(")


def _drop_generated_columns(sql: str) -> str:
    """Cut each `, name TYPE GENERATED ALWAYS AS (...) VIRTUAL` (its expression nests parentheses)."""
    while match := _GENERATED.search(sql):
        depth, end = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            end += 1
        tail = re.match(r"\s*(VIRTUAL|STORED)?", sql[end:])
        sql = sql[: match.start()] + sql[end + (tail.end() if tail else 0) :]
    return sql


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT max(version) FROM schema_migrations").fetchone()
    assert row is not None  # an aggregate without GROUP BY returns one row
    return int(row[0] or 0)

{#- What the billing figures read that no change log follows, as one hash taken at the start of the
    build: the suppliers (a currency or a country changed), the exchange rates (a new rate in the
    seed), the rate each currency has today (the billing status converts a Devis in another
    currency at today's rate), and the settings the status and margin rules read. The build's
    incremental copies (macros/billing_changes.sql) recompute every dossier when it differs from
    the one of the last build that applied its changes (int_mart_changes_applied keeps it), as it
    keeps the day the margin VAT was posted up to. -#}
{{ config(schema='intermediate', materialized='table') }}

select
    md5(concat_ws(
        '|',
        '{{ var("billing_tolerance") }}',
        '{{ var("matching_auto_threshold") }}',
        '{{ var("matching_suggestion_floor") }}',
        '{{ var("eu_vat_countries") | join(",") }}',
        '{{ var("margin_vat_rate") }}',
        '{{ var("accounting_timezone") }}',
        (select string_agg(s::text, ';' order by s.supplier_code) from {{ ref('stg_app__suppliers') }} as s),
        (select string_agg(r::text, ';' order by r.currency, r.rate_date) from {{ ref('exchange_rates') }} as r),
        (
            select string_agg(t.currency || ':' || t.rate_date, ';' order by t.currency)
            from (
                select distinct on (currency) currency, rate_date
                from {{ ref('exchange_rates') }}
                where rate_date <= {{ accounting_today() }}
                order by currency, rate_date desc
            ) as t
        )
    )) as fingerprint,
    -- The day the margin VAT is posted up to as the build starts: the next build reads the
    -- dossiers departed since (macro entries_margin_vat_dossiers). Taken before accounting_entries
    -- runs, so never later than the day it used.
    {{ margin_vat_as_of() }} as margin_vat_as_of,
    now() as taken_at

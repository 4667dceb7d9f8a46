{#- The journal as the last build's checks passed it: per journal and fiscal year, the last entry
    number, and the count and totals of the lines up to it. Built after accounting_entries and its
    checks (a failed check skips it: the next build checks the same lines again), it is where the
    next daily build's checks of the journal start from (macros/entries_checked.sql): the lines
    numbered after it, and one pass proving the lines up to it are still these counts and totals.
    Incremental: the lines posted since are added to the last state, found by the index on
    (journal_code, year, entry_number) without a pass over the journal; a full refresh (or the
    first build) counts the whole journal. Like int_mart_changes_applied, a `dbt run` of it
    without the journal's checks marks the journal checked: the pipeline runs `dbt build`. Analyzed
    after each build: accounting_entries_checked_unchanged hash-joins the journal with its few rows. -#}
-- depends_on: {{ ref('accounting_entries') }}
{{ config(
    schema='intermediate',
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['journal_code', 'fiscal_year'],
    on_schema_change='fail',
    post_hook="analyze {{ this }}"
) }}

{% if is_incremental() %}
with posted as (
    select
        journal_code,
        extract(year from entry_date)::integer as fiscal_year,
        max(entry_number) as last_number,
        count(*) as lines,
        sum(debit) as debit,
        sum(credit) as credit
    from ({{ entries_since_checked(this) }}) as since
    group by journal_code, extract(year from entry_date)
)

select
    p.journal_code,
    p.fiscal_year,
    p.last_number::integer as last_number,
    (coalesce(c.lines, 0) + p.lines)::bigint as lines,
    (coalesce(c.debit, 0) + p.debit)::numeric(18, 2) as debit,
    (coalesce(c.credit, 0) + p.credit)::numeric(18, 2) as credit
from posted as p
left join {{ this }} as c on c.journal_code = p.journal_code and c.fiscal_year = p.fiscal_year
{% else %}
select
    journal_code,
    extract(year from entry_date)::integer as fiscal_year,
    max(entry_number)::integer as last_number,
    count(*)::bigint as lines,
    sum(debit)::numeric(18, 2) as debit,
    sum(credit)::numeric(18, 2) as credit
from {{ ref('accounting_entries') }}
group by journal_code, extract(year from entry_date)
{% endif %}

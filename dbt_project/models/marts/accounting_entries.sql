{#- The journal: every posted line, numbered per journal and fiscal year (calendar year of the
    entry date) in validation order. Numbers are given once: an incremental run only adds the
    entries of records not posted yet, numbered after the last number of their journal and year,
    and never touches a posted line (validated entries are intangible, and the FEC's
    numbering is continuous, LPF art. A47 A-1). A full refresh numbers everything the same way from
    scratch: since validated_at is the records' creation time, it gives the same numbers. -#}
-- The records an incremental run reads to find what it has still to post:
-- depends_on: {{ ref('stg_app__payments') }}
-- depends_on: {{ ref('stg_app__client_invoices') }}
-- depends_on: {{ ref('stg_app__write_offs') }}
-- depends_on: {{ ref('stg_app__supplier_invoices') }}
-- depends_on: {{ ref('stg_app__supplier_invoice_lines') }}
-- depends_on: {{ ref('stg_app__suppliers') }}
-- depends_on: {{ ref('int_client__accounts') }}
-- depends_on: {{ ref('int_margin__actual_costs') }}
-- depends_on: {{ ref('int_margin__exchange_rates') }}
-- depends_on: {{ ref('int_mart_changes') }}
-- depends_on: {{ ref('int_mart_changes_fingerprint') }}
-- depends_on: {{ ref('int_matching_candidates') }}
{#- Indexes: the record's lines (the incremental run's "not posted yet"); a journal's year by
    number: the daily checks' walk to the lines numbered after the last checked
    (macros/entries_checked.sql) and the export's marking of the entries it wrote out; the
    dossier's lines, the daily check of the bank lines against the payments of a dossier. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['source_type', 'source_id'],
        on_schema_change='fail',
        post_hook="{{ entries_checked_forget() }}",
        indexes=[
            {'columns': ['source_type', 'source_id']},
            {'columns': ['journal_code', '(extract(year from entry_date))', 'entry_number']},
            {'columns': ['dossier_number']}
        ]
    )
}}
{% if is_incremental() %}
{#- The records not posted yet are read alone (docs/dbt.md, "Accounting entries: the new records
    only"): computed for every record, the views took most of a daily build's time at 1,000,000
    dossiers for a few thousand new entries. The payments, client invoices and write-offs through
    their views filtered on the ids; the supplier invoices by the view's own SQL restricted to
    them (its dossier per line is grouped from int_margin__actual_costs, which no filter on the
    view reaches); the margin VAT of the dossiers that may have become due since the last build,
    each through the view by its index (whole when every dossier is recomputed). Each set holds
    every record its view has still to post, so new_lines below is what it was. -#}
{%- set margin_vat_dossiers = entries_margin_vat_dossiers(this) %}
with lines as (
    select * from ({{ entries_supplier_invoices(invoices=entries_to_post('supplier_invoice', this)) }}) as s
    union all
    select * from {{ ref('int_entries__client_payments') }}
    where source_id = any(array({{ entries_to_post('payment', this) }}))
    union all
    {% if margin_vat_dossiers is none -%}
    select * from {{ ref('int_entries__margin_vat') }}
    {%- else -%}
    select v.* from ({{ margin_vat_dossiers }}) as due (dossier_number)
    cross join lateral (
        select * from {{ ref('int_entries__margin_vat') }} as m where m.source_id = due.dossier_number offset 0
    ) as v
    {%- endif %}
    union all
    select * from {{ ref('int_entries__client_invoices') }}
    where source_id = any(array({{ entries_to_post('client_invoice', this) }}))
    union all
    select * from {{ ref('int_entries__write_offs') }}
    where source_id = any(array({{ entries_to_post('write_off', this) }}))
),

new_lines as (
    select l.*
    from lines as l
    where not exists (
        select 1 from {{ this }} as t
        where t.source_type = l.source_type and t.source_id = l.source_id
    )
),

last_numbers as (
    select journal_code, extract(year from entry_date) as fiscal_year, max(entry_number) as last_number
    from {{ this }}
    group by journal_code, extract(year from entry_date)
),
{% else %}
with lines as (
    select * from {{ ref('int_entries__supplier_invoices') }}
    union all
    select * from {{ ref('int_entries__client_payments') }}
    union all
    select * from {{ ref('int_entries__margin_vat') }}
    union all
    select * from {{ ref('int_entries__client_invoices') }}
    union all
    select * from {{ ref('int_entries__write_offs') }}
),

new_lines as (
    select * from lines
),

last_numbers as (
    select cast(null as text) as journal_code, cast(null as numeric) as fiscal_year, 0 as last_number
    where 1 = 0
),
{% endif %}

entries as (
    select
        journal_code,
        extract(year from entry_date) as fiscal_year,
        source_type,
        source_id,
        min(validated_at) as validated_at
    from new_lines
    group by journal_code, extract(year from entry_date), source_type, source_id
),

numbered as (
    select
        e.journal_code,
        e.source_type,
        e.source_id,
        coalesce(n.last_number, 0) + row_number() over (
            partition by e.journal_code, e.fiscal_year
            -- Ties in time are broken by the record's id, so the order never depends on the run.
            order by e.validated_at, e.source_type, e.source_id
        ) as entry_number
    from entries as e
    left join last_numbers as n on n.journal_code = e.journal_code and n.fiscal_year = e.fiscal_year
)

select
    l.journal_code::text as journal_code,
    n.entry_number::integer as entry_number,
    l.entry_date::date as entry_date,
    l.account::text as account,
    l.aux_account::text as aux_account,
    c.label::text as account_label,
    l.piece_ref::text as piece_ref,
    l.piece_date::date as piece_date,
    l.label::text as label,
    l.debit::numeric(14, 2) as debit,
    l.credit::numeric(14, 2) as credit,
    l.currency_amount::numeric(14, 2) as currency_amount,
    l.currency::text as currency,
    l.validated_at::timestamptz as validated_at,
    l.source_type::text as source_type,
    l.source_id::text as source_id,
    l.dossier_number::text as dossier_number,
    -- Set by the export that first writes the entry out (it updates this table in its own
    -- transaction); taken from its record here, so a full refresh loses none.
    x.export_id::text as exported_in
from new_lines as l
inner join numbered as n
    on n.journal_code = l.journal_code and n.source_type = l.source_type and n.source_id = l.source_id
left join {{ ref('stg_app__exported_entries') }} as x
    on x.journal_code = l.journal_code
    and x.fiscal_year = extract(year from l.entry_date)
    and x.entry_number = n.entry_number
left join {{ ref('chart_of_accounts') }} as c on c.account = l.account

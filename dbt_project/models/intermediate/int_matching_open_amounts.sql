{#- Per (supplier, currency, kind of line, amount, dossier): an amount a supplier invoice line of that
    kind may carry as one still open for the dossier, with the dossier's dates with the supplier
    (null when it has no service of the supplier: no invoice date then fits). An invoice:
    everything expected, what is still open, one service or one price line, as long as the
    dossier is not already fully invoiced by lines the rules found. A credit note: what was
    invoiced beyond what is expected, or a service the dossier cancelled.

    Incremental by dossier (macros/matching_open_amounts.sql; docs/dbt.md, "Incremental open
    amounts"): a build recomputes the dossiers the change log names and those the rules of a new,
    changed or re-ruled line name (int_matching_rule_changes), the other lines' rules read from
    int_matching_candidates as it stands before this build. Indexed so that
    int_matching_candidates reads per line only the few dossiers it keeps, most recently booked first, instead of every dossier holding a common amount: those
    pairs grow with the square of the dossiers (158,635 at 100,000 dossiers, ~1.24 M at 300,000)
    and their sorts were most of the model's time at 1,000,000 (docs/dbt.md, "Open amounts read
    per line"). The rules are the candidates model's own (macro matching_rule_ctes). -#}
-- depends_on: {{ ref('int_matching_changes') }}
-- depends_on: {{ ref('int_matching_rule_changes') }}
{% set dossiers = matching_open_dossiers() if is_incremental() else none %}
{{ config(
    schema='intermediate',
    materialized='incremental',
    incremental_strategy='replace_open_dossiers',
    on_schema_change='fail',
    indexes=[
        {'columns': ['supplier_code', 'currency', 'kind', 'amount', 'booked_on', 'dossier_number']},
        {'columns': ['dossier_number', 'supplier_code']},
    ],
    post_hook="analyze {{ this }}"
) }}

{% if dossiers is none %}
with {{ matching_rule_ctes() }},

-- Lines a rule names exactly one dossier for: what they carry is taken as invoiced.
ruled_once as (
    select supplier_code, invoice_number, line_number, min(dossier_number) as dossier_number
    from rule_pairs
    group by supplier_code, invoice_number, line_number
    having count(*) = 1
),
{% else %}
{% set previous = matching_relation('int_matching_candidates') %}
with rule_changes as (
    select supplier_code, invoice_number, line_number, rules_now
    from {{ ref('int_matching_rule_changes') }}
),

-- The lines the table rules to one of these dossiers, whose rules have not moved since.
kept_lines as (
    select distinct p.supplier_code, p.invoice_number, p.line_number
    from {{ previous }} as p
    where p.is_rule and {{ matching_among('p.dossier_number', dossiers) }}
        and not exists (
            select 1 from rule_changes as t
            where t.supplier_code = p.supplier_code and t.invoice_number = p.invoice_number
                and t.line_number = p.line_number
        )
),

ruled_once as (
    select p.supplier_code, p.invoice_number, p.line_number, min(p.dossier_number) as dossier_number
    from kept_lines as k
    inner join {{ previous }} as p using (supplier_code, invoice_number, line_number)
    where p.is_rule
    group by p.supplier_code, p.invoice_number, p.line_number
    having count(*) = 1
    union all
    select supplier_code, invoice_number, line_number, rules_now[1]
    from rule_changes
    where cardinality(rules_now) = 1 and {{ matching_among('rules_now[1]', dossiers) }}
),

lines as (
    select supplier_code, invoice_number, line_number, kind, currency, amount_incl_tax
    from {{ ref('stg_app__supplier_invoice_lines') }}
),
{% endif %}

-- What the rules already found invoiced per dossier and supplier, credit notes subtracted.
ruled_invoiced as (
    select r.dossier_number, l.supplier_code, l.currency,
        sum(case when l.kind = 'credit_note' then -l.amount_incl_tax else l.amount_incl_tax end) as invoiced
    from ruled_once as r
    inner join lines as l using (supplier_code, invoice_number, line_number)
    group by r.dossier_number, l.supplier_code, l.currency
),

expected as (
    select
        e.dossier_number,
        e.supplier_code,
        e.currency,
        e.expected_amount,
        e.expected_amount - coalesce(ri.invoiced, 0) as still_open
    from {{ ref('int_expected__by_dossier_supplier') }} as e
    left join ruled_invoiced as ri using (dossier_number, supplier_code, currency)
    where {{ matching_among('e.dossier_number', dossiers) }}
),

-- Amounts in the purchase currency (int_matching_dossier_amounts).
amount_targets as (
    select a.dossier_number, a.supplier_code, a.currency, 'invoice' as kind, a.amount
    from {{ ref('int_matching_dossier_amounts') }} as a
    inner join expected as e using (dossier_number, supplier_code, currency)
    where a.open_if_expected and e.still_open > 0
    union
    select dossier_number, supplier_code, currency, 'invoice', still_open from expected
    where still_open > 0 and still_open < expected_amount
    union
    select dossier_number, supplier_code, currency, 'credit_note', -still_open
    from expected
    where still_open < 0
    union
    select dossier_number, supplier_code, currency, 'credit_note', amount
    from {{ ref('int_matching_dossier_amounts') }}
    where cancelled and {{ matching_among('dossier_number', dossiers) }}
)

select
    a.supplier_code,
    a.currency,
    a.kind,
    a.amount,
    a.dossier_number,
    k.booked_on,
    k.last_date
from amount_targets as a
left join {{ ref('int_matching_dossier_keys') }} as k
    on k.dossier_number = a.dossier_number and k.supplier_code = a.supplier_code

{#- Per (supplier, currency, kind of line, amount, dossier): an amount a supplier invoice line of that
    kind may carry as one still open for the dossier, with the dossier's dates with the supplier
    (null when it has no service of the supplier: no invoice date then fits). An invoice:
    everything expected, what is still open, one service or one price line, as long as the
    dossier is not already fully invoiced by lines the rules found. A credit note: what was
    invoiced beyond what is expected, or a service the dossier cancelled.

    A table, rebuilt by each build (what is open depends on the lines the rules match, so on every
    new invoice), indexed so that int_matching_candidates reads per line only the few dossiers
    it keeps, most recently booked first, instead of every dossier holding a common amount: those
    pairs grow with the square of the dossiers (158,635 at 100,000 dossiers, ~1.24 M at 300,000)
    and their sorts were most of the model's time at 1,000,000 (docs/dbt.md, "Open amounts read
    per line"). The rules are the candidates model's own (macro matching_rule_ctes). -#}
{{ config(
    schema='intermediate',
    materialized='table',
    indexes=[
        {'columns': ['supplier_code', 'currency', 'kind', 'amount', 'booked_on', 'dossier_number']},
        {'columns': ['dossier_number', 'supplier_code']},
    ],
    post_hook="analyze {{ this }}"
) }}

with {{ matching_rule_ctes() }},

-- Lines a rule names exactly one dossier for: what they carry is taken as invoiced.
ruled_once as (
    select supplier_code, invoice_number, line_number, min(dossier_number) as dossier_number
    from rule_pairs
    group by supplier_code, invoice_number, line_number
    having count(*) = 1
),

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
    where cancelled
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

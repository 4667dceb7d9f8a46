{#- The supplier invoice lines that belong to a dossier, for the actual margin and for the
    dossier of each purchase entry: the lines that count in the matching
    (int_invoice_lines__matched: auto_matched, confirmed, manual), so the actual margin follows
    reconciliation. A line an accountant split over several dossiers gives one row per dossier,
    each with its part (signed: a credit note subtracts). Incremental by dossier
    (macros/billing_changes.sql): a build reads the views for the dossiers whose figures may have
    changed since the last one, each by its index, and keeps the other rows; a decision taken
    since the last build shows in the actual margin at the next one. -#}
-- depends_on: {{ ref('int_mart_changes') }}
-- depends_on: {{ ref('int_mart_changes_fingerprint') }}
-- depends_on: {{ ref('int_matching_candidates') }}
{% set dossiers = billing_changed_dossiers() if is_incremental() else none %}
with matched as (
    select
        supplier_code, invoice_number, line_number, kind, invoice_date, currency, dossier_number,
        signed_amount_incl_tax
    from (
        {{ rows_of_dossiers(
            ref('int_invoice_lines__matched'),
            ['supplier_code', 'invoice_number', 'line_number', 'kind', 'invoice_date', 'currency',
             'dossier_number', 'signed_amount_incl_tax', 'is_counted'],
            'dossier_number', dossiers) }}
    ) as m
    where is_counted and dossier_number is not null
),

dossiers as (
    {{ rows_of_dossiers(ref('int_client__accounts'), ['dossier_number', 'currency', 'destination_in_eu'], 'dossier_number', dossiers) }}
),

-- An invoice line carries no service kind: it takes the EU share of what the Devis expects from
-- the same supplier in that dossier, else the supplier's country, else the destination.
supplier_eu_share as (
    select
        dossier_number,
        supplier_code,
        case
            when sum(purchase_total_dossier_currency) <> 0
                then sum(case when performed_in_eu then purchase_total_dossier_currency else 0 end)
                    / sum(purchase_total_dossier_currency)
        end as eu_share
    from (
        {{ rows_of_dossiers(
            ref('int_margin__estimated_costs'),
            ['dossier_number', 'supplier_code', 'purchase_total_dossier_currency', 'performed_in_eu'],
            'dossier_number', dossiers) }}
    ) as e
    group by dossier_number, supplier_code
),

suppliers as (
    select supplier_code, cast(country as text) as country from {{ ref('stg_app__suppliers') }}
),

rates as (
    select * from {{ ref('int_margin__exchange_rates') }}
),

converted as (
    select
        m.supplier_code,
        m.invoice_number,
        m.line_number,
        m.kind,
        m.invoice_date,
        m.dossier_number,
        cast(m.currency as text) as currency,
        m.signed_amount_incl_tax,
        case
            when m.currency = d.currency then m.signed_amount_incl_tax
            else round(m.signed_amount_incl_tax * lr.rate_to_eur / dr.rate_to_eur, 2)
        end as amount_dossier_currency,
        coalesce(
            e.eu_share,
            case
                when s.country is not null then
                    case when s.country in (
                        {%- for c in var('eu_vat_countries') %}'{{ c }}'{{ ',' if not loop.last }}{% endfor -%}
                    ) then 1 else 0 end
                when d.destination_in_eu then 1
                else 0
            end
        ) as eu_share
    from matched as m
    inner join dossiers as d on d.dossier_number = m.dossier_number
    left join supplier_eu_share as e on e.dossier_number = m.dossier_number and e.supplier_code = m.supplier_code
    left join suppliers as s on s.supplier_code = m.supplier_code
    left join rates as lr
        on lr.currency = m.currency and m.invoice_date >= lr.valid_from and m.invoice_date < lr.valid_to
    left join rates as dr
        on dr.currency = d.currency and m.invoice_date >= dr.valid_from and m.invoice_date < dr.valid_to
)

select
    *,
    amount_dossier_currency * eu_share as eu_amount_dossier_currency
from converted

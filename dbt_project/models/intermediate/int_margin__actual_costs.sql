{#- The supplier invoice lines that belong to a dossier, for the actual margin and for the
    dossier of each purchase entry. Stop-gap matching until the matching mart
    (supplier_invoice_line_matches) is wired in: a line belongs to the dossier whose number its
    reference contains (case and punctuation aside), and only when it names exactly one known
    dossier; swap the `matched` CTE for that mart's counted lines and nothing downstream changes.
    The numbers are extracted with a pattern and joined on equality: a "reference contains
    number" join compares every line with every dossier and does not scale. -#}
{%- set pattern = var('dossier_number_pattern', '(BK[0-9]{10})') -%}
with lines as (
    select * from {{ ref('stg_app__supplier_invoice_lines') }}
),

dossiers as (
    select * from {{ ref('int_client__accounts') }}
),

named as (
    select distinct
        l.supplier_code,
        l.invoice_number,
        l.line_number,
        token.value[1] as dossier_key
    from lines as l
    cross join lateral regexp_matches(
        regexp_replace(upper(l.reference), '[^A-Z0-9]', '', 'g'), '{{ pattern }}', 'g'
    ) as token(value)
    where l.reference is not null
),

candidates as (
    select
        n.supplier_code,
        n.invoice_number,
        n.line_number,
        d.dossier_number,
        count(*) over (partition by n.supplier_code, n.invoice_number, n.line_number) as dossiers_named
    from named as n
    inner join dossiers as d
        on regexp_replace(upper(d.dossier_number), '[^A-Z0-9]', '', 'g') = n.dossier_key
),

matched as (
    select supplier_code, invoice_number, line_number, dossier_number
    from candidates
    where dossiers_named = 1
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
    from {{ ref('int_margin__estimated_costs') }}
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
        l.supplier_code,
        l.invoice_number,
        l.line_number,
        l.kind,
        l.invoice_date,
        m.dossier_number,
        cast(l.currency as text) as currency,
        l.signed_amount_incl_tax,
        case
            when l.currency = d.currency then l.signed_amount_incl_tax
            else round(l.signed_amount_incl_tax * lr.rate_to_eur / dr.rate_to_eur, 2)
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
    from lines as l
    inner join matched as m
        on m.supplier_code = l.supplier_code
        and m.invoice_number = l.invoice_number
        and m.line_number = l.line_number
    inner join dossiers as d on d.dossier_number = m.dossier_number
    left join supplier_eu_share as e on e.dossier_number = m.dossier_number and e.supplier_code = l.supplier_code
    left join suppliers as s on s.supplier_code = l.supplier_code
    left join rates as lr
        on lr.currency = l.currency and l.invoice_date >= lr.valid_from and l.invoice_date < lr.valid_to
    left join rates as dr
        on dr.currency = d.currency and l.invoice_date >= dr.valid_from and l.invoice_date < dr.valid_to
)

select
    *,
    amount_dossier_currency * eu_share as eu_amount_dossier_currency
from converted

{#- The Devis' active lines with the place each service is performed, which decides whether its
    share of the margin carries VAT (Directive 2006/112 art. 309: the margin on services performed
    outside the EU is exempt). Purchases are converted to the dossier currency at the rate of the
    day the line was recorded, so a line keeps its value whatever later rates do. -#}
with lines as (
    select * from {{ ref('dossier_price_lines') }}
    where is_active
),

dossiers as (
    select * from {{ ref('int_client__accounts') }}
),

suppliers as (
    select supplier_code, cast(country as text) as country from {{ ref('stg_app__suppliers') }}
),

rates as (
    select * from {{ ref('int_margin__exchange_rates') }}
),

placed as (
    select
        l.dossier_number,
        l.line_key,
        l.service_id,
        l.service_kind,
        l.supplier_code,
        l.sale_total,
        l.purchase_currency,
        l.purchase_total,
        case
            when l.purchase_currency = d.currency then l.purchase_total
            else round(l.purchase_total * pr.rate_to_eur / dr.rate_to_eur, 2)
        end as purchase_total_dossier_currency,
        case
            -- Accommodation, transfers, activities and car hire are performed where the traveller
            -- uses them: at the destination.
            when l.service_kind in ('hotel', 'transfer', 'activity', 'car', 'package') then d.destination_country
            -- A flight follows the trip's destination: a flight within the EU is taxed, a flight to
            -- or from a third country is international transport, treated as performed outside
            -- the EU for the margin (no itinerary is held to split it by distance).
            when l.service_kind = 'flight' then d.destination_country
            -- Insurance, cruises and lines without a service: where the supplier is established.
            else coalesce(s.country, d.destination_country)
        end as service_country
    from lines as l
    inner join dossiers as d on d.dossier_number = l.dossier_number
    left join suppliers as s on s.supplier_code = l.supplier_code
    left join rates as pr
        on pr.currency = l.purchase_currency
        and cast(l.created_at as date) >= pr.valid_from and cast(l.created_at as date) < pr.valid_to
    left join rates as dr
        on dr.currency = d.currency
        and cast(l.created_at as date) >= dr.valid_from and cast(l.created_at as date) < dr.valid_to
)

select
    *,
    service_country in (
        {%- for c in var('eu_vat_countries') %}'{{ c }}'{{ ',' if not loop.last }}{% endfor -%}
    ) as performed_in_eu
from placed

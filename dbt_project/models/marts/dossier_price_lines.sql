{#- The Devis: the booking lines of the dossier's current platform version, then every line
    recorded here (modification, regulation, adjustment, cancellation fee), whatever version
    they were recorded against. -#}
with dossiers as (
    select * from {{ ref('stg_app__dossiers') }}
),

services as (
    select * from {{ ref('stg_app__services') }}
),

lines as (
    select l.*
    from {{ ref('stg_app__price_lines') }} as l
    inner join dossiers as d on d.dossier_number = l.dossier_number
    where l.origin <> 'booking' or l.booking_version = d.platform_version
),

-- A cancelled line and its reversal (a line with the opposite amounts pointing at it) net to
-- zero; both show as inactive when both are in the Devis.
reversed_pairs as (
    select r.price_line_id as reversal_id, r.reverses_id as reversed_id
    from lines as r
    inner join lines as o on o.price_line_id = r.reverses_id
),

-- Both ends of each pair, one id a row, so the test below is a hash anti-join (an "in (a, b)"
-- test would compare every line with every pair).
reversed_ids as (
    select reversal_id as price_line_id from reversed_pairs
    union
    select reversed_id from reversed_pairs
)

select
    l.dossier_number::text as dossier_number,
    l.price_line_id::text as line_key,
    l.service_id::text as service_id,
    s.kind::text as service_kind,
    s.label::text as service_label,
    s.status::text as service_status,
    coalesce(l.supplier_code, s.supplier_code)::text as supplier_code,
    l.origin::text as origin,
    l.label::text as label,
    l.quantity::integer as quantity,
    l.unit_sale_amount::numeric(14, 2) as unit_sale_amount,
    l.sale_currency::text as sale_currency,
    l.sale_total::numeric(14, 2) as sale_total,
    l.unit_purchase_amount::numeric(14, 2) as unit_purchase_amount,
    l.purchase_currency::text as purchase_currency,
    l.purchase_total::numeric(14, 2) as purchase_total,
    l.vat_rate::numeric(6, 4) as vat_rate,
    -- A cancelled service no longer counts, except the fee its cancellation costs.
    (
        (s.status is distinct from 'cancelled' or l.origin = 'cancellation_fee')
        and not exists (select 1 from reversed_ids as p where p.price_line_id = l.price_line_id)
    )::boolean as is_active,
    l.created_at::timestamptz as created_at,
    l.created_by::text as created_by,
    l.reason::text as reason,
    row_number() over (
        partition by l.dossier_number
        order by
            case when l.origin = 'booking' then 0 else 1 end,
            -- natural order of platform ids: L2 before L10
            case when l.origin = 'booking' then {{ dbt.length("l.line_id") }} end,
            case when l.origin = 'booking' then l.line_id end,
            l.created_at,
            l.price_line_id
    )::integer as sort_order
from lines as l
left join services as s
    on s.dossier_number = l.dossier_number and s.service_id = l.service_id

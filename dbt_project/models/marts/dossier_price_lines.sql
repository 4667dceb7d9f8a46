{#- The Devis: the booking lines of the dossier's current platform version, then every line
    recorded here (modification, regulation, adjustment, cancellation fee), whatever version
    they were recorded against.

    Written so that a filter on dossier_number reaches every table's index (the dossier page
    reads one dossier): each relation is referenced once and joined on dossier_number, no CTE is
    used twice (PostgreSQL would materialise it for every dossier before filtering), and the
    window is partitioned by dossier_number, so the filter passes below it. A reversal and the
    line it reverses are in the same dossier (the services write reversals so), which is what
    lets the reversal pairs be found within the dossier. docs/scaling.md has the plans. -#}
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
    -- A cancelled service no longer counts, except the fee its cancellation costs. A line and
    -- its reversal (the opposite amounts, pointing at it) net to zero: both are inactive when
    -- both are in the Devis.
    (
        (s.status is distinct from 'cancelled' or l.origin = 'cancellation_fee')
        and reversed.price_line_id is null
        and reversal.reverses_id is null
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
from {{ ref('stg_app__price_lines') }} as l
inner join {{ ref('stg_app__dossiers') }} as d
    on d.dossier_number = l.dossier_number
left join {{ ref('stg_app__services') }} as s
    on s.dossier_number = l.dossier_number and s.service_id = l.service_id
-- The line this one reverses, when that line is in the Devis (by primary key: at most one).
left join {{ ref('stg_app__price_lines') }} as reversed
    on reversed.price_line_id = l.reverses_id
    and reversed.dossier_number = l.dossier_number
    and (reversed.origin <> 'booking' or reversed.booking_version = d.platform_version)
-- A reversal of this line that is in the Devis (distinct: a line reversed twice stays one row).
left join (
    select distinct r.dossier_number, r.reverses_id
    from {{ ref('stg_app__price_lines') }} as r
    inner join {{ ref('stg_app__dossiers') }} as rd
        on rd.dossier_number = r.dossier_number
    where r.reverses_id is not null
        and (r.origin <> 'booking' or r.booking_version = rd.platform_version)
) as reversal
    on reversal.dossier_number = l.dossier_number and reversal.reverses_id = l.price_line_id
where l.origin <> 'booking' or l.booking_version = d.platform_version

-- Only captured, refunded and chargeback movements move money (landing contract); failed
-- attempts stay visible with moves_money = false. A payment that landed without a known dossier
-- and was attributed by an agent (app.payment_attributions) counts for the attributed dossier;
-- received_dossier_number keeps what the provider sent.
--
-- Two branches rather than coalesce(attributed, received): a reader filtering on one dossier
-- (every per-dossier view above) then reaches each table through its dossier index, where a
-- filter on the coalesce read every payment (docs/dbt.md, "Views read for one dossier").
{%- set columns -%}
    p.received_at,
    p.method,
    p.amount,
    p.currency,
    p.status,
    p.status in ('captured', 'refunded', 'chargeback') as moves_money,
    p.provider,
    p.provider_reference,
    p.payer_name,
    p.origin,
    p.voucher_code,
    p.created_by,
    p.created_at,
    p.dossier_number as received_dossier_number,
    p.refund_of
{%- endset %}
select
    p.payment_id,
    p.dossier_number,
    {{ columns }},
    cast(null as timestamptz) as attributed_at
from {{ source('app', 'payments') }} as p
where not exists (
    select 1 from {{ source('app', 'payment_attributions') }} as a where a.payment_id = p.payment_id
)
union all
select
    p.payment_id,
    a.dossier_number,
    {{ columns }},
    a.attributed_at
from {{ source('app', 'payments') }} as p
inner join {{ source('app', 'payment_attributions') }} as a on a.payment_id = p.payment_id

-- Only captured, refunded and chargeback movements move money (landing contract); failed
-- attempts stay visible with moves_money = false. A payment that landed without a known dossier
-- and was attributed by an agent (app.payment_attributions) counts for the attributed dossier;
-- received_dossier_number keeps what the provider sent.
select
    p.payment_id,
    coalesce(a.dossier_number, p.dossier_number) as dossier_number,
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
    a.attributed_at,
    p.refund_of
from {{ source('app', 'payments') }} as p
left join {{ source('app', 'payment_attributions') }} as a on a.payment_id = p.payment_id

-- Only captured, refunded and chargeback movements move money (landing contract); failed
-- attempts stay visible with moves_money = false.
select
    payment_id,
    dossier_number,
    received_at,
    method,
    amount,
    currency,
    status,
    status in ('captured', 'refunded', 'chargeback') as moves_money,
    provider,
    provider_reference,
    payer_name,
    origin,
    voucher_code,
    created_by,
    created_at
from {{ source('app', 'payments') }}

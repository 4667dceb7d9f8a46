select
    dossier_number,
    seq as schedule_seq,
    due_date,
    amount,
    kind,
    method
from {{ source('app', 'payment_schedule') }}

select
    dossier_number,
    traveller_id,
    first_name,
    last_name,
    birth_date,
    kind
from {{ source('app', 'travellers') }}

select
    dossier_number,
    platform_version,
    status,
    currency,
    sale_total,
    created_at,
    updated_at
from {{ source('app', 'dossiers') }}

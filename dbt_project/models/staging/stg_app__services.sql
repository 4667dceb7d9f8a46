select
    dossier_number,
    service_id,
    kind,
    label,
    status,
    supplier_code,
    supplier_reference,
    start_date,
    end_date
from {{ source('app', 'services') }}

-- A decision stays in the table when a later one replaces it (immutability); is_current tells
-- the decisions still in force, so nothing downstream has to chase supersedes_id again.
select
    d.id as decision_id,
    d.supplier_code,
    d.invoice_number,
    d.line_number,
    d.decision,
    d.dossier_number,
    d.amount_incl_tax,
    d.decided_by,
    d.decided_at,
    d.reason,
    d.supersedes_id,
    not exists (
        select 1 from {{ source('app', 'reconciliation_decisions') }} as later where later.supersedes_id = d.id
    ) as is_current
from {{ source('app', 'reconciliation_decisions') }} as d

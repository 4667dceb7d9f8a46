-- A write-off and its undo are both rows (immutability); `reverses_id` names the row an undo
-- cancels, and `original_amount` is the amount of the write-off itself (its own for a write-off),
-- whose sign says which account (gain or loss) both rows post to.
select
    w.id as write_off_id,
    w.dossier_number,
    w.supplier_code,
    w.amount,
    w.invoiced_amount,
    w.expected_amount,
    cast(w.currency as text) as currency,
    w.threshold,
    w.reason,
    w.created_by,
    w.created_at,
    w.reverses_id,
    coalesce(o.amount, w.amount) as original_amount
from {{ source('app', 'write_offs') }} as w
left join {{ source('app', 'write_offs') }} as o on o.id = w.reverses_id

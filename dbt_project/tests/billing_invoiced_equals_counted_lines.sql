-- invoiced_amount is the signed sum of the lines that count (auto_matched, confirmed), for rows
-- where nothing had to be converted. Returns the rows that disagree.
with counted as (
    select
        dossier_number, supplier_code,
        sum(case when kind = 'credit_note' then -amount_incl_tax else amount_incl_tax end) as amount
    from {{ ref('supplier_invoice_line_matches') }}
    where state in ('auto_matched', 'confirmed')
    group by dossier_number, supplier_code
)

select b.dossier_number, b.supplier_code, b.invoiced_amount, c.amount
from {{ ref('supplier_billing_status') }} as b
left join counted as c using (dossier_number, supplier_code)
where b.converted_from_currency is null and b.invoiced_amount <> coalesce(c.amount, 0)

-- invoiced_amount is the signed sum of the lines that count (auto_matched, confirmed), for rows
-- where nothing had to be converted. Returns the rows that disagree. A daily build compares the
-- dossiers changed since the last build (docs/dbt.md, "Daily checks of the changed dossiers").
-- depends_on: {{ ref('int_mart_changes') }}
-- depends_on: {{ ref('int_matching_candidates') }}
{%- set dossiers = mart_changed_dossiers() %}
with lines as (
    {{ rows_of_dossiers(ref('supplier_invoice_line_matches'),
        ['dossier_number', 'supplier_code', 'kind', 'amount_incl_tax', 'state'], 'dossier_number', dossiers) }}
),

billing as (
    {{ rows_of_dossiers(ref('supplier_billing_status'),
        ['dossier_number', 'supplier_code', 'invoiced_amount', 'converted_from_currency'], 'dossier_number', dossiers) }}
),

counted as (
    select
        dossier_number, supplier_code,
        sum(case when kind = 'credit_note' then -amount_incl_tax else amount_incl_tax end) as amount
    from lines
    where state in ('auto_matched', 'confirmed')
    group by dossier_number, supplier_code
)

select b.dossier_number, b.supplier_code, b.invoiced_amount, c.amount
from billing as b
left join counted as c using (dossier_number, supplier_code)
where b.converted_from_currency is null and b.invoiced_amount <> coalesce(c.amount, 0)

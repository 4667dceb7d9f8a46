-- Per supplier and currency, what the purchase journal put on the supplier's 401 account
-- (credits less debits, in the invoice currency) equals the signed totals of its invoices and
-- credit notes. Returns the suppliers where they differ.
with posted as (
    select
        {{ dbt.split_part("source_id", "'/'", 1) }} as supplier_code,
        currency,
        sum(case when credit > 0 then currency_amount else -currency_amount end) as posted_amount
    from {{ ref('accounting_entries') }}
    where journal_code = 'AC' and account = '401'
    group by {{ dbt.split_part("source_id", "'/'", 1) }}, currency
),

invoiced as (
    select supplier_code, cast(currency as text) as currency, sum(signed_amount_incl_tax) as invoiced_amount
    from {{ ref('stg_app__supplier_invoice_lines') }}
    group by supplier_code, currency
)

select
    coalesce(a.supplier_code, b.supplier_code) as supplier_code,
    coalesce(a.currency, b.currency) as currency,
    a.posted_amount,
    b.invoiced_amount
from posted as a
full outer join invoiced as b on b.supplier_code = a.supplier_code and b.currency = a.currency
where coalesce(a.posted_amount, 0) <> coalesce(b.invoiced_amount, 0)

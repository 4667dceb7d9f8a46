-- Per dossier and currency, what the sales journal put on the client's 411 account (debits less
-- credits, in the document's currency) equals the signed totals of its client invoices and credit
-- notes, and 706 holds the same the other way. Returns the dossiers where they differ.
with posted as (
    select
        dossier_number,
        currency,
        sum(case when account = '411' and debit > 0 then currency_amount
                 when account = '411' then -currency_amount else 0 end) as client_amount,
        sum(case when account = '706' and credit > 0 then currency_amount
                 when account = '706' then -currency_amount else 0 end) as sales_amount
    from {{ ref('accounting_entries') }}
    where journal_code = 'VE'
    group by dossier_number, currency
),

invoiced as (
    select dossier_number, currency, sum(signed_total_amount) as invoiced_amount
    from {{ ref('stg_app__client_invoices') }}
    group by dossier_number, currency
)

select
    coalesce(a.dossier_number, b.dossier_number) as dossier_number,
    coalesce(a.currency, b.currency) as currency,
    a.client_amount,
    a.sales_amount,
    b.invoiced_amount
from posted as a
full outer join invoiced as b on b.dossier_number = a.dossier_number and b.currency = a.currency
where coalesce(a.client_amount, 0) <> coalesce(b.invoiced_amount, 0)
    or coalesce(a.sales_amount, 0) <> coalesce(b.invoiced_amount, 0)

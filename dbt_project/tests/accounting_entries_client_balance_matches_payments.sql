-- Per dossier and currency, what the bank journal put on the client's 411 account (credits less
-- debits, in the payment's currency) equals the net money-moving payments. Returns the
-- dossiers where they differ.
with posted as (
    select
        dossier_number,
        currency,
        sum(case when credit > 0 then currency_amount else -currency_amount end) as posted_amount
    from {{ ref('accounting_entries') }}
    where journal_code = 'BQ' and account = '411'
    group by dossier_number, currency
),

paid as (
    select p.dossier_number, cast(p.currency as text) as currency, sum(p.amount) as paid_amount
    from {{ ref('stg_app__payments') }} as p
    inner join {{ ref('int_client__accounts') }} as d on d.dossier_number = p.dossier_number
    where p.moves_money
    group by p.dossier_number, p.currency
)

select
    coalesce(a.dossier_number, b.dossier_number) as dossier_number,
    coalesce(a.currency, b.currency) as currency,
    a.posted_amount,
    b.paid_amount
from posted as a
full outer join paid as b on b.dossier_number = a.dossier_number and b.currency = a.currency
where coalesce(a.posted_amount, 0) <> coalesce(b.paid_amount, 0)

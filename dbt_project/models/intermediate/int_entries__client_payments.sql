{#- Bank journal (BQ): one entry per money-moving client payment (captured, refunded,
    chargeback; landing contract). A payment debits the account where the money arrives and
    credits the client's 411 auxiliary account; a refund or chargeback (negative amount) reverses
    both. Cheques, holiday vouchers (ANCV) and gift vouchers are not money in the bank until
    remitted: they go to 5112 (titres a encaisser); cash to 530; cards and transfers to 512.
    A payment with no known dossier waits on 471 until someone attributes it. Amounts in EUR at
    the rate of the day received: a foreign-currency operation is booked at the rate of its date. -#}
-- The day's automatic charges come first (their payments are read through stg_app__payments):
-- depends_on: {{ source('app', 'balance_charge_attempts') }}
with payments as (
    select * from {{ ref('stg_app__payments') }}
    where moves_money
),

dossiers as (
    select * from {{ ref('int_client__accounts') }}
),

rates as (
    select * from {{ ref('int_margin__exchange_rates') }}
),

converted as (
    select
        p.payment_id,
        p.dossier_number,
        d.client_account,
        p.method,
        cast(p.received_at at time zone '{{ var("accounting_timezone") }}' as date) as received_on,
        p.created_at,
        cast(p.currency as text) as currency,
        p.amount,
        coalesce(p.provider_reference, p.payment_id) as piece_ref,
        case
            when p.method in ('cheque', 'holiday_voucher', 'gift_voucher') then '5112'
            when p.method = 'cash' then '530'
            else '512'
        end as money_account,
        case when p.amount < 0 then 'Remboursement' else 'Reglement' end as movement
    from payments as p
    left join dossiers as d on d.dossier_number = p.dossier_number
),

with_eur as (
    select
        c.*,
        case
            when c.currency = 'EUR' then c.amount
            else round(c.amount * r.rate_to_eur, 2)
        end as amount_eur,
        {{ dbt.concat(["c.movement", "' '", "c.method", "' '", "coalesce(c.dossier_number, 'non affecte')"]) }} as label
    from converted as c
    left join rates as r
        on r.currency = c.currency and c.received_on >= r.valid_from and c.received_on < r.valid_to
),

-- Each payment's two sides, the money account's and the client's, from one read of with_eur: read
-- twice (a select per side), it was computed once for every payment before any filter, so
-- reading one payment's lines (accounting_entries' new payments) cost the whole view.
sides as (
    select true as is_money
    union all
    select false
),

all_lines as (
    select
        'BQ' as journal_code,
        w.received_on as entry_date,
        case
            when s.is_money then w.money_account
            when w.client_account is null then '471'
            else '411'
        end as account,
        case when s.is_money then cast(null as text) else w.client_account end as aux_account,
        w.piece_ref,
        w.received_on as piece_date,
        w.label,
        case
            when s.is_money then case when w.amount_eur > 0 then w.amount_eur when w.amount_eur <= 0 then 0 end
            else case when w.amount_eur < 0 then -w.amount_eur when w.amount_eur >= 0 then 0 end
        end as debit,
        case
            when s.is_money then case when w.amount_eur < 0 then -w.amount_eur when w.amount_eur >= 0 then 0 end
            else case when w.amount_eur > 0 then w.amount_eur when w.amount_eur <= 0 then 0 end
        end as credit,
        abs(w.amount) as currency_amount,
        w.currency,
        w.created_at as validated_at,
        'payment' as source_type,
        w.payment_id as source_id,
        w.dossier_number
    from with_eur as w
    cross join sides as s
)

select
    journal_code,
    entry_date,
    account,
    aux_account,
    piece_ref,
    piece_date,
    label,
    cast(debit as numeric(14, 2)) as debit,
    cast(credit as numeric(14, 2)) as credit,
    cast(currency_amount as numeric(14, 2)) as currency_amount,
    currency,
    validated_at,
    source_type,
    source_id,
    dossier_number
from all_lines
-- A line without an exchange rate (null amounts) stays, for the not_null checks to stop the build.
where debit <> 0 or credit <> 0 or debit is null or credit is null

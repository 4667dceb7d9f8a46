{#- Sales journal (VE): one entry per client invoice or credit note. Under the travel agents'
    margin scheme the invoice shows no VAT (Directive 2006/112 art. 306-310, CGI art. 266-1-e and
    297 A): the client's 411 auxiliary account is debited and 706 credited with the total VAT
    included; the VAT on the margin is moved out of 706 by the OD journal, per dossier, not per
    invoice. A credit note (negative signed total) reverses both sides. Amounts in EUR at the rate
    of the issue date: a foreign-currency operation is booked at the rate of its date. -#}
with invoices as (
    select * from {{ ref('stg_app__client_invoices') }}
),

dossiers as (
    select * from {{ ref('int_client__accounts') }}
),

rates as (
    select * from {{ ref('int_margin__exchange_rates') }}
),

converted as (
    select
        i.invoice_number,
        i.issue_date,
        i.issued_at,
        i.dossier_number,
        d.client_account,
        i.currency,
        i.total_amount,
        case
            when i.currency = 'EUR' then i.signed_total_amount
            else round(i.signed_total_amount * r.rate_to_eur, 2)
        end as signed_amount_eur,
        {{ dbt.concat([
            "case when i.kind = 'credit_note' then 'Avoir' else 'Facture' end",
            "' '", "i.invoice_number", "' '", "i.dossier_number"
        ]) }} as label
    from invoices as i
    left join dossiers as d on d.dossier_number = i.dossier_number
    left join rates as r
        on r.currency = i.currency and i.issue_date >= r.valid_from and i.issue_date < r.valid_to
),

sides as (
    -- The client's account takes the signed amount as a debit, 706 the same as a credit.
    select '411' as account, 1 as sign
    union all
    select '706', -1
),

all_lines as (
    select
        'VE' as journal_code,
        c.issue_date as entry_date,
        s.account,
        case when s.account = '411' then c.client_account end as aux_account,
        c.invoice_number as piece_ref,
        c.issue_date as piece_date,
        c.label,
        s.sign * c.signed_amount_eur as debit_amount,
        c.total_amount as currency_amount,
        c.currency,
        c.issued_at as validated_at,
        'client_invoice' as source_type,
        c.invoice_number as source_id,
        c.dossier_number
    from converted as c
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
    -- Null (and failing the not_null tests) only when no exchange rate covers the issue date.
    cast(case when debit_amount > 0 then debit_amount when debit_amount <= 0 then 0 end as numeric(14, 2)) as debit,
    cast(case when debit_amount < 0 then -debit_amount when debit_amount >= 0 then 0 end as numeric(14, 2)) as credit,
    cast(currency_amount as numeric(14, 2)) as currency_amount,
    currency,
    validated_at,
    source_type,
    source_id,
    dossier_number
from all_lines
-- A zero line says nothing and the FEC has no use for it; a line with no rate stays, to be seen.
where debit_amount <> 0 or debit_amount is null

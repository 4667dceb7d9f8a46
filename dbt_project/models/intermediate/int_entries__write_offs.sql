{#- Miscellaneous journal (OD): one entry per write-off of a supplier invoice difference and per
    undo of one (app.write_offs). The supplier is taken as paid what the Devis expects; the write-off
    clears what that leaves on its account: when it invoiced more (amount > 0) the excess is a gain,
    debit 401 (its auxiliary account) / credit 758; when it invoiced less (amount < 0) the shortfall
    is a loss, debit 658 / credit 401. An undo (the opposite amount) posts to the same accounts as
    the write-off it cancels, on the opposite sides. EUR at the rate of the day it was recorded
    (Paris), rounded once so the entry balances; validated when recorded. -#}
with write_offs as (
    select * from {{ ref('stg_app__write_offs') }}
),

suppliers as (
    select * from {{ ref('stg_app__suppliers') }}
),

rates as (
    select * from {{ ref('int_margin__exchange_rates') }}
),

dated as (
    select
        w.*,
        cast(w.created_at at time zone '{{ var("accounting_timezone") }}' as date) as entry_date
    from write_offs as w
),

converted as (
    select
        d.*,
        case
            when d.currency = 'EUR' then d.amount
            else round(d.amount * r.rate_to_eur, 2)
        end as amount_eur,
        case when d.original_amount > 0 then '758' else '658' end as result_account,
        {{ dbt.concat([
            "case when d.reverses_id is null then '' else 'Annulation ' end",
            "case when d.original_amount > 0 then 'Ecart fournisseur en profit ' else 'Ecart fournisseur en perte ' end",
            "d.supplier_code", "' '", "d.dossier_number"]) }} as label
    from dated as d
    left join rates as r
        on r.currency = d.currency and d.entry_date >= r.valid_from and d.entry_date < r.valid_to
),

sides as (
    -- is_supplier: the 401 line, debited by a positive amount; the other is the result account.
    select 1 as is_supplier
    union all
    select 0
)

select
    'OD' as journal_code,
    c.entry_date,
    case when s.is_supplier = 1 then '401' else c.result_account end as account,
    case
        when s.is_supplier = 1 then coalesce(p.ledger_account, {{ dbt.concat(["'401'", "c.supplier_code"]) }})
    end as aux_account,
    {{ dbt.concat(["'WO-'", "cast(c.write_off_id as text)"]) }} as piece_ref,
    c.entry_date as piece_date,
    c.label,
    cast(case
        when (s.is_supplier = 1) = (c.amount_eur > 0) then abs(c.amount_eur) else 0
    end as numeric(14, 2)) as debit,
    cast(case
        when (s.is_supplier = 1) = (c.amount_eur > 0) then 0 else abs(c.amount_eur)
    end as numeric(14, 2)) as credit,
    cast(abs(c.amount) as numeric(14, 2)) as currency_amount,
    c.currency,
    c.created_at as validated_at,
    'write_off' as source_type,
    cast(c.write_off_id as text) as source_id,
    c.dossier_number
from converted as c
cross join sides as s
left join suppliers as p on p.supplier_code = c.supplier_code

{#- Miscellaneous journal (OD): the margin VAT of each dossier, moved out of the sale (706,
    recorded VAT included under the margin scheme) into VAT collected (44571). Posted once, on the
    departure date: the margin cannot be known when deposits are collected, and by departure the
    trip is performed and, per the schedule, paid (the choice and its legal ground are discussed in
    docs/accounting.md). The margin used is the best known that day: actual when every supplier
    has invoiced, else the Devis estimate. A later change of margin calls for a regularisation
    entry (not posted yet, see docs/accounting.md). Quotes and options were never sold, and a
    cancelled dossier's retained fees are left to the accountant. -#}
with margins as (
    select * from {{ ref('int_margin__by_dossier') }}
),

dossiers as (
    select * from {{ ref('int_client__accounts') }}
),

rates as (
    select * from {{ ref('int_margin__exchange_rates') }}
),

due as (
    select
        d.dossier_number,
        d.departure_date,
        m.currency,
        m.margin_vat,
        m.computed_from,
        case
            when m.currency = 'EUR' then m.margin_vat
            else round(m.margin_vat * r.rate_to_eur, 2)
        end as margin_vat_eur
    from margins as m
    inner join dossiers as d on d.dossier_number = m.dossier_number
    left join rates as r
        on r.currency = m.currency and d.departure_date >= r.valid_from and d.departure_date < r.valid_to
    where d.status = 'confirmed'
        and d.departure_date <= {{ margin_vat_as_of() }}
        and m.margin_vat > 0
),

sides as (
    select '706' as account, 1 as is_debit
    union all
    select '44571', 0
)

select
    'OD' as journal_code,
    u.departure_date as entry_date,
    s.account,
    cast(null as text) as aux_account,
    u.dossier_number as piece_ref,
    u.departure_date as piece_date,
    {{ dbt.concat(["'TVA sur marge '", "u.computed_from", "' '", "u.dossier_number"]) }} as label,
    cast(case when s.is_debit = 1 then u.margin_vat_eur else 0 end as numeric(14, 2)) as debit,
    cast(case when s.is_debit = 0 then u.margin_vat_eur else 0 end as numeric(14, 2)) as credit,
    cast(u.margin_vat as numeric(14, 2)) as currency_amount,
    u.currency,
    -- Midnight of the departure day, Paris time: the moment the VAT became due.
    cast(u.departure_date as timestamp) at time zone '{{ var("accounting_timezone") }}' as validated_at,
    'margin_vat' as source_type,
    u.dossier_number as source_id,
    u.dossier_number
from due as u
cross join sides as s

{#- Rate periods: a rate holds from its date until the next rate of the same currency. Before the
    first known rate there is none: a piece that old fails the not_null tests downstream instead of
    being converted with a made-up rate. rate_to_eur is the value in EUR of one unit of currency
    (amount_eur = amount * rate_to_eur). -#}
with rates as (
    select
        cast(currency as text) as currency,
        cast(rate_date as date) as rate_date,
        cast(rate_to_eur as numeric(18, 8)) as rate_to_eur
    from {{ ref('exchange_rates') }}
    where currency <> 'EUR'
)

select
    currency,
    rate_date as valid_from,
    coalesce(
        lead(rate_date) over (partition by currency order by rate_date),
        cast('9999-12-31' as date)
    ) as valid_to,
    rate_to_eur
from rates

union all

select 'EUR', cast('1900-01-01' as date), cast('9999-12-31' as date), cast(1 as numeric(18, 8))

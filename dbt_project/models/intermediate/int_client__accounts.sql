{#- stg_app__dossiers does not expose the client and the trip yet (staging belongs to another
    change), so the few columns the margin and the entries need are read from the source here.
    Move them into stg_app__dossiers and this model becomes a plain select. -#}
with dossiers as (
    select * from {{ ref('stg_app__dossiers') }}
),

details as (
    select dossier_number, client_id, destination_country, departure_date, return_date
    from {{ source('app', 'dossiers') }}
)

select
    d.dossier_number,
    d.status,
    cast(d.currency as text) as currency,
    x.client_id,
    -- Client auxiliary accounts are 411 + the platform's client id (one account per client,
    -- whatever the number of dossiers).
    {{ dbt.concat(["'411'", "x.client_id"]) }} as client_account,
    cast(x.destination_country as text) as destination_country,
    cast(x.destination_country as text) in (
        {%- for c in var('eu_vat_countries') %}'{{ c }}'{{ ',' if not loop.last }}{% endfor -%}
    ) as destination_in_eu,
    x.departure_date,
    x.return_date
from dossiers as d
inner join details as x on x.dossier_number = d.dossier_number

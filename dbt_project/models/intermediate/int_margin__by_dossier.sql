{#- The margin of each dossier under the travel agents' margin scheme (CGI art. 266-1-e and
    268 bis; Directive 2006/112 art. 306-310), computed per dossier as CJEU C-380/16 allows:
    margin = sale price incl. VAT - costs incl. VAT of the services bought from third parties for
    the traveller (their VAT is not deductible, art. 310). Only the part of the margin relating to
    services performed in the EU carries VAT (art. 309), split in proportion to those services'
    costs. VAT is included in the margin: VAT = margin x rate / (1 + rate). A negative margin
    carries no VAT and is not offset against another dossier's. -#}
{%- set rate = var('margin_vat_rate') -%}
with dossiers as (
    select * from {{ ref('int_client__accounts') }}
),

-- Each cost view is read once (materialized): both are views over views, and read twice each, the
-- planner's guesses led it to re-run one for every row of the other (minutes on 12,000 dossiers).
estimated_costs as materialized (
    select * from {{ ref('int_margin__estimated_costs') }}
),

actual_costs as materialized (
    select * from {{ ref('int_margin__actual_costs') }}
),

estimated as (
    select
        dossier_number,
        sum(sale_total) as sale_total,
        sum(purchase_total_dossier_currency) as purchase_total,
        sum(case when performed_in_eu then purchase_total_dossier_currency else 0 end) as purchase_total_eu
    from estimated_costs
    group by dossier_number
),

actual as (
    select
        dossier_number,
        sum(amount_dossier_currency) as purchase_total,
        sum(eu_amount_dossier_currency) as purchase_total_eu
    from actual_costs
    group by dossier_number
),

-- The actual margin is the one to use once every supplier the Devis expects something from has
-- invoiced the dossier; before that it would count only part of the costs.
suppliers_waited_for as (
    select e.dossier_number, count(*) as suppliers_not_invoiced
    from (
        select distinct dossier_number, supplier_code
        from estimated_costs
        where purchase_total <> 0
    ) as e
    left join (
        select distinct dossier_number, supplier_code from actual_costs
    ) as a on a.dossier_number = e.dossier_number and a.supplier_code = e.supplier_code
    where a.dossier_number is null
    group by e.dossier_number
),

-- The estimate counts as soon as a deposit is received: any money-moving payment.
deposits as (
    select distinct dossier_number
    from {{ ref('stg_app__payments') }}
    where moves_money and dossier_number is not null
),

figures as (
    select
        d.dossier_number,
        d.currency,
        d.destination_in_eu,
        coalesce(e.sale_total, 0) as sale_total,
        coalesce(e.purchase_total, 0) as purchase_total_estimated,
        coalesce(e.purchase_total_eu, 0) as purchase_total_eu_estimated,
        a.purchase_total as purchase_total_actual,
        a.purchase_total_eu as purchase_total_eu_actual,
        p.dossier_number is not null as has_deposit,
        a.dossier_number is not null as has_actual_costs,
        a.dossier_number is not null and w.dossier_number is null as is_fully_invoiced
    from dossiers as d
    left join estimated as e on e.dossier_number = d.dossier_number
    left join actual as a on a.dossier_number = d.dossier_number
    left join suppliers_waited_for as w on w.dossier_number = d.dossier_number
    left join deposits as p on p.dossier_number = d.dossier_number
),

shares as (
    select
        *,
        sale_total - purchase_total_estimated as margin_estimated,
        sale_total - purchase_total_actual as margin_actual,
        -- No cost to split by (a dossier sold without purchases): the destination decides.
        case
            when purchase_total_estimated <> 0
                then least(greatest(purchase_total_eu_estimated / purchase_total_estimated, 0), 1)
            when destination_in_eu then 1
            else 0
        end as eu_share_estimated,
        case
            when purchase_total_actual <> 0
                then least(greatest(purchase_total_eu_actual / purchase_total_actual, 0), 1)
            when purchase_total_actual is null then null
            when destination_in_eu then 1
            else 0
        end as eu_share_actual
    from figures
),

vat as (
    select
        *,
        case
            when margin_estimated > 0
                then round(margin_estimated * eu_share_estimated * {{ rate }} / (1 + {{ rate }}), 2)
            else 0
        end as margin_vat_estimated,
        case
            when margin_actual > 0
                then round(margin_actual * eu_share_actual * {{ rate }} / (1 + {{ rate }}), 2)
            when margin_actual is not null then 0
        end as margin_vat_actual
    from shares
)

select
    dossier_number,
    currency,
    cast(sale_total as numeric(14, 2)) as sale_total,
    -- purchase_total and margin are the Devis' (what dossier_billing_status shows); the actual
    -- figures follow.
    cast(purchase_total_estimated as numeric(14, 2)) as purchase_total,
    cast(margin_estimated as numeric(14, 2)) as margin,
    cast(purchase_total_estimated as numeric(14, 2)) as purchase_total_estimated,
    cast(margin_estimated as numeric(14, 2)) as margin_estimated,
    cast(margin_vat_estimated as numeric(14, 2)) as margin_vat_estimated,
    cast(purchase_total_actual as numeric(14, 2)) as purchase_total_actual,
    cast(margin_actual as numeric(14, 2)) as margin_actual,
    cast(margin_vat_actual as numeric(14, 2)) as margin_vat_actual,
    cast(case when is_fully_invoiced then eu_share_actual else eu_share_estimated end as numeric(9, 6)) as eu_share,
    case when is_fully_invoiced then 'actual' else 'estimated' end as computed_from,
    cast(case when is_fully_invoiced then margin_vat_actual else margin_vat_estimated end as numeric(14, 2)) as margin_vat,
    has_deposit,
    has_actual_costs
from vat

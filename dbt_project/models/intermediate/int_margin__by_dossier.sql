{#- The margin of each dossier under the travel agents' margin scheme (CGI art. 266-1-e and
    268 bis; Directive 2006/112 art. 306-310), computed per dossier as CJEU C-380/16 allows:
    margin = sale price incl. VAT - costs incl. VAT of the services bought from third parties for
    the traveller (their VAT is not deductible, art. 310). Only the part of the margin relating to
    services performed in the EU carries VAT (art. 309), split in proportion to those services'
    costs. VAT is included in the margin: VAT = margin x rate / (1 + rate). A negative margin
    carries no VAT and is not offset against another dossier's. -#}
{%- set rate = var('margin_vat_rate') -%}
{#- Each input is read once, so PostgreSQL inlines it and a reader's filter on one dossier reaches
    the tables' dossier indexes (docs/dbt.md, "Views read for one dossier"): the Devis' costs and the
    matched invoices' costs go through one union, summed per supplier then per dossier. -#}
with dossiers as (
    select * from {{ ref('int_client__accounts') }}
),

costs as (
    select
        dossier_number,
        supplier_code,
        sale_total,
        purchase_total_dossier_currency as estimated,
        case when performed_in_eu then purchase_total_dossier_currency else 0 end as estimated_eu,
        purchase_total <> 0 as expects_invoice,
        cast(null as numeric) as actual,
        cast(null as numeric) as actual_eu,
        false as invoiced
    from {{ ref('int_margin__estimated_costs') }}
    union all
    select
        dossier_number,
        supplier_code,
        0,
        0,
        0,
        false,
        amount_dossier_currency,
        eu_amount_dossier_currency,
        true
    from {{ ref('int_margin__actual_costs') }}
),

by_supplier as (
    select
        dossier_number,
        supplier_code,
        sum(sale_total) as sale_total,
        sum(estimated) as estimated,
        sum(estimated_eu) as estimated_eu,
        sum(actual) as actual,
        sum(actual_eu) as actual_eu,
        bool_or(expects_invoice) as expects_invoice,
        bool_or(invoiced) as invoiced
    from costs
    group by dossier_number, supplier_code
),

-- The actual margin is the one to use once every supplier the Devis expects something from has
-- invoiced the dossier; before that it would count only part of the costs.
by_dossier as (
    select
        dossier_number,
        sum(sale_total) as sale_total,
        sum(estimated) as purchase_total,
        sum(estimated_eu) as purchase_total_eu,
        sum(actual) as purchase_total_actual,
        sum(actual_eu) as purchase_total_eu_actual,
        bool_or(invoiced) as has_actual_costs,
        count(*) filter (where expects_invoice and (not invoiced or supplier_code is null)) as suppliers_not_invoiced
    from by_supplier
    group by dossier_number
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
        coalesce(c.sale_total, 0) as sale_total,
        coalesce(c.purchase_total, 0) as purchase_total_estimated,
        coalesce(c.purchase_total_eu, 0) as purchase_total_eu_estimated,
        c.purchase_total_actual,
        c.purchase_total_eu_actual,
        p.dossier_number is not null as has_deposit,
        coalesce(c.has_actual_costs, false) as has_actual_costs,
        coalesce(c.has_actual_costs and c.suppliers_not_invoiced = 0, false) as is_fully_invoiced
    from dossiers as d
    left join by_dossier as c on c.dossier_number = d.dossier_number
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

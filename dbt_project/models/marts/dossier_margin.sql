{#- The margin of the dossiers that have one to speak of: a deposit received (the estimate from
    the Devis counts from then) or a supplier invoice attributed. The rules are in
    int_margin__by_dossier and docs/accounting.md. -#}
select
    dossier_number::text as dossier_number,
    currency::text as currency,
    sale_total::numeric(14, 2) as sale_total,
    purchase_total_estimated::numeric(14, 2) as purchase_total_estimated,
    margin_estimated::numeric(14, 2) as margin_estimated,
    margin_vat_estimated::numeric(14, 2) as margin_vat_estimated,
    purchase_total_actual::numeric(14, 2) as purchase_total_actual,
    margin_actual::numeric(14, 2) as margin_actual,
    margin_vat_actual::numeric(14, 2) as margin_vat_actual,
    eu_share::numeric(9, 6) as eu_share,
    computed_from::text as computed_from
from {{ ref('int_margin__by_dossier') }}
where has_deposit or has_actual_costs

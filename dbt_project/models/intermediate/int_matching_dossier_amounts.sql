{#- Per (supplier, currency, amount, dossier): every amount a dossier carries for a supplier, in the
    purchase currency, and what it is. int_matching_candidates looks a line's amount up here: as an
    index lookup among the supplier's dossiers, most recently booked first, instead of reading the Devis
    (dossier_price_lines, a view) again for each kind of amount.

    - held: a price line (active or not), a service in all, the expected amount: a line carrying
      it may be a late or duplicate invoice of it, so another dossier holding it makes an open
      amount elsewhere no proof;
    - open_if_expected: one price line or one service's active lines, or the expected amount
      itself: an invoice line may carry it while the dossier still expects something from the
      supplier (the model checks what is still open, which depends on the lines the rules matched);
    - cancelled: a cancelled service's cost but its cancellation fee, which a credit note may give back.

    booked_on and last_date are the dossier's with the supplier (int_matching_dossier_keys; null
    when the dossier has no service of the supplier): the window the invoice date must fit.

    Incremental by dossier: a build recomputes the dossiers whose price lines, services or dossier
    row changed (macros/matching_changes.sql); every row depends on its dossier's only. -#}
-- depends_on: {{ ref('int_matching_changes') }}
{{ config(
    schema='intermediate',
    materialized='incremental',
    incremental_strategy='replace_changed_dossiers',
    on_schema_change='fail',
    indexes=[{'columns': ['supplier_code', 'currency', 'amount', 'booked_on', 'dossier_number']}],
    post_hook="analyze {{ this }}"
) }}

with lines as materialized (
    select dossier_number, supplier_code, service_id, purchase_currency as currency, purchase_total,
        is_active, service_status, origin
    from {{ ref('dossier_price_lines') }}
    where supplier_code is not null and purchase_total is not null
    {% if is_incremental() %}
        and {{ matching_changed('dossier_number') }}
    {% endif %}
),

amounts as (
    select dossier_number, supplier_code, currency, purchase_total as amount,
        true as held, is_active as open_if_expected, false as cancelled
    from lines
    union all
    select dossier_number, supplier_code, currency, sum(purchase_total), true, false, false
    from lines
    group by dossier_number, supplier_code, service_id, currency
    union all
    select dossier_number, supplier_code, currency, sum(purchase_total), false, true, false
    from lines
    where is_active
    group by dossier_number, supplier_code, service_id, currency
    union all
    select dossier_number, supplier_code, currency, sum(purchase_total), false, false, true
    from lines
    where service_status = 'cancelled' and origin <> 'cancellation_fee'
    group by dossier_number, supplier_code, service_id, currency
    union all
    select dossier_number, supplier_code, currency, expected_amount, true, true, false
    from {{ ref('int_expected__by_dossier_supplier') }}
    {% if is_incremental() %}
    where {{ matching_changed('dossier_number') }}
    {% endif %}
)

select
    a.supplier_code,
    a.currency,
    a.amount::numeric(14, 2) as amount,
    a.dossier_number,
    bool_or(a.held) as held,
    bool_or(a.open_if_expected) as open_if_expected,
    bool_or(a.cancelled) as cancelled,
    k.booked_on,
    k.last_date
from amounts as a
left join {{ ref('int_matching_dossier_keys') }} as k
    on k.dossier_number = a.dossier_number and k.supplier_code = a.supplier_code
group by a.supplier_code, a.currency, a.amount, a.dossier_number, k.booked_on, k.last_date

{#- What each client owes and has paid, per dossier, in the dossier currency. -#}
{#- Each per-dossier step is read once, or `not materialized` (dossiers), so PostgreSQL inlines it and
    a reader's filter on one dossier reaches the tables' dossier indexes; a step read twice is
    otherwise computed for every dossier first (docs/dbt.md, "Views read for one dossier"). -#}
with dossiers as not materialized (
    select dossier_number, currency from {{ ref('int_client__accounts') }}
),

devis as (
    select dossier_number, sum(sale_total) as sale_total
    from {{ ref('dossier_price_lines') }}
    where is_active
    group by dossier_number
),

rates as (
    select * from {{ ref('int_margin__exchange_rates') }}
),

-- Failed attempts move no money (landing contract); refunds and chargebacks are negative.
payments as (
    select
        p.dossier_number,
        case
            when p.currency = d.currency then p.amount
            else round(p.amount * pr.rate_to_eur / dr.rate_to_eur, 2)
        end as amount
    from {{ ref('stg_app__payments') }} as p
    inner join dossiers as d on d.dossier_number = p.dossier_number
    -- The rate of the day received, that day taken in Paris as in the bank journal.
    left join rates as pr
        on pr.currency = p.currency
        and cast(p.received_at at time zone '{{ var("accounting_timezone") }}' as date) >= pr.valid_from
        and cast(p.received_at at time zone '{{ var("accounting_timezone") }}' as date) < pr.valid_to
    left join rates as dr
        on dr.currency = d.currency
        and cast(p.received_at at time zone '{{ var("accounting_timezone") }}' as date) >= dr.valid_from
        and cast(p.received_at at time zone '{{ var("accounting_timezone") }}' as date) < dr.valid_to
    where p.moves_money
),

paid as (
    select
        dossier_number,
        sum(amount) as net_paid,
        sum(case when amount < 0 then -amount else 0 end) as refunded
    from payments
    group by dossier_number
),

-- Issued client invoices net of credit notes, in the dossier currency (a document in another
-- currency, which the service layer does not issue today, at the rate of its issue date).
invoiced as (
    select
        i.dossier_number,
        sum(case
            when i.currency = d.currency then i.signed_total_amount
            else round(i.signed_total_amount * ir.rate_to_eur / dr.rate_to_eur, 2)
        end) as invoiced_amount
    from {{ ref('stg_app__client_invoices') }} as i
    inner join dossiers as d on d.dossier_number = i.dossier_number
    left join rates as ir
        on ir.currency = i.currency and i.issue_date >= ir.valid_from and i.issue_date < ir.valid_to
    left join rates as dr
        on dr.currency = d.currency and i.issue_date >= dr.valid_from and i.issue_date < dr.valid_to
    group by i.dossier_number
),

-- The schedule is covered in due order: an item is paid once the payments reach its cumulative
-- amount; the first item beyond what was paid is the next one, for its uncovered part.
schedule as (
    select
        s.dossier_number,
        s.due_date,
        s.schedule_seq,
        sum(s.amount) over (
            partition by s.dossier_number
            order by s.due_date, s.schedule_seq
            rows between unbounded preceding and current row
        ) as cumulative_due
    from {{ ref('stg_app__payment_schedule') }} as s
),

-- Every dossier with its items not covered yet (none: one row with no item), the first one ranked 1.
uncovered as (
    select
        d.dossier_number,
        d.currency,
        v.sale_total,
        i.invoiced_amount,
        p.net_paid,
        p.refunded,
        s.due_date,
        s.cumulative_due - coalesce(p.net_paid, 0) as uncovered_amount,
        row_number() over (partition by d.dossier_number order by s.due_date, s.schedule_seq) as rank_uncovered
    from dossiers as d
    left join devis as v on v.dossier_number = d.dossier_number
    left join paid as p on p.dossier_number = d.dossier_number
    left join invoiced as i on i.dossier_number = d.dossier_number
    left join schedule as s on s.dossier_number = d.dossier_number and s.cumulative_due > coalesce(p.net_paid, 0)
)

select
    dossier_number,
    currency,
    cast(coalesce(sale_total, 0) as numeric(14, 2)) as sale_total,
    cast(coalesce(invoiced_amount, 0) as numeric(14, 2)) as client_invoiced_amount,
    cast(coalesce(net_paid, 0) as numeric(14, 2)) as client_paid_amount,
    cast(coalesce(refunded, 0) as numeric(14, 2)) as client_refunded_amount,
    cast(coalesce(sale_total, 0) - coalesce(net_paid, 0) as numeric(14, 2)) as client_balance_due,
    due_date as next_payment_due_date,
    cast(uncovered_amount as numeric(14, 2)) as next_payment_amount
from uncovered
where rank_uncovered = 1

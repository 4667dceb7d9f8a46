{#- Billing status per (dossier, supplier): what the Devis says we owe against what the supplier
    invoiced and we matched (outputs.md). A view over views and the matching table, so an
    accountant's decision or an agent's regulation shows at once.

    A difference an accountant wrote off (app.write_offs, net of undos) is settled: the status
    rules of outputs.md apply to the expected amount plus the written-off amount, so a row whose
    whole difference was written off is `invoiced`; expected_amount and difference keep their
    meaning, written_off_amount and remaining_difference say what was written off and what is
    left. -#}
with expected_lines as (
    select * from {{ ref('int_expected__by_dossier_supplier') }}
),

counted as (
    select * from {{ ref('int_invoice_lines__matched') }}
    where is_counted and dossier_number is not null
),

-- Each rate holds from its date to the next one; the first one also covers anything older, so
-- an early invoice is converted rather than left out of the sum.
rates as (
    select
        currency::text as currency,
        case when row_number() over (partition by currency order by rate_date) = 1
            then date '1900-01-01' else rate_date end as valid_from,
        coalesce(lead(rate_date) over (partition by currency order by rate_date), date '9999-12-31') as valid_to,
        rate_to_eur
    from {{ ref('exchange_rates') }}
),

keys as (
    select dossier_number, supplier_code from expected_lines
    union
    select dossier_number, supplier_code from counted
),

-- The row's currency is that of the expected lines; if a supplier's lines of one dossier came in
-- several currencies, the supplier's own currency; with nothing expected, the invoice's.
expected_currency as (
    select
        dossier_number,
        supplier_code,
        case when count(distinct currency) = 1 then min(currency) end as currency
    from expected_lines
    group by dossier_number, supplier_code
),

invoice_currency as (
    select dossier_number, supplier_code, min(currency) as currency
    from counted
    group by dossier_number, supplier_code
),

row_currency as (
    select
        k.dossier_number,
        k.supplier_code,
        coalesce(e.currency, s.currency, i.currency)::text as currency
    from keys as k
    left join expected_currency as e on e.dossier_number = k.dossier_number and e.supplier_code = k.supplier_code
    left join invoice_currency as i on i.dossier_number = k.dossier_number and i.supplier_code = k.supplier_code
    left join {{ ref('stg_app__suppliers') }} as s on s.supplier_code = k.supplier_code
),

-- Expected lines in another currency (rare: a supplier changing currency) at today's rate.
-- Only the lines in another currency than the row's look a rate up: a range join against every
-- rate of the currency costs seconds on hundreds of thousands of rows that need none. The few
-- that do are set apart first (materialized: the planner, misjudging the views' sizes, would
-- otherwise join the rates to every line before filtering).
expected_converted as materialized (
    select r.dossier_number, r.supplier_code, r.currency as to_currency, e.currency, e.expected_amount
    from row_currency as r
    inner join expected_lines as e
        on e.dossier_number = r.dossier_number and e.supplier_code = r.supplier_code and e.currency <> r.currency
),

expected as (
    select dossier_number, supplier_code, sum(amount) as expected_amount
    from (
        select r.dossier_number, r.supplier_code, e.expected_amount as amount
        from row_currency as r
        inner join expected_lines as e
            on e.dossier_number = r.dossier_number and e.supplier_code = r.supplier_code and e.currency = r.currency
        union all
        select x.dossier_number, x.supplier_code, round(x.expected_amount * fr.rate_to_eur / tr.rate_to_eur, 2)
        from expected_converted as x
        left join rates as fr on fr.currency = x.currency and current_date >= fr.valid_from and current_date < fr.valid_to
        left join rates as tr
            on tr.currency = x.to_currency and current_date >= tr.valid_from and current_date < tr.valid_to
    ) as amounts
    group by dossier_number, supplier_code
),

written_off as (
    select
        r.dossier_number,
        r.supplier_code,
        sum(case when w.currency = r.currency then w.amount
            else round(w.amount * fr.rate_to_eur / tr.rate_to_eur, 2) end) as written_off_amount
    from row_currency as r
    inner join {{ ref('stg_app__write_offs') }} as w
        on w.dossier_number = r.dossier_number and w.supplier_code = r.supplier_code
    left join rates as fr on fr.currency = w.currency and current_date >= fr.valid_from and current_date < fr.valid_to
    left join rates as tr on tr.currency = r.currency and current_date >= tr.valid_from and current_date < tr.valid_to
    group by r.dossier_number, r.supplier_code
),

-- An invoice in another currency than the lines it pays for is converted at the rate of its date.
counted_converted as materialized (
    select r.dossier_number, r.supplier_code, r.currency as to_currency, c.currency, c.invoice_date,
        c.signed_amount_incl_tax
    from row_currency as r
    inner join counted as c
        on c.dossier_number = r.dossier_number and c.supplier_code = r.supplier_code and c.currency <> r.currency
),

invoiced_lines as (
    select
        r.dossier_number,
        r.supplier_code,
        c.currency as invoice_currency,
        c.invoice_date,
        cast(null as numeric) as exchange_rate,
        c.signed_amount_incl_tax as amount
    from row_currency as r
    inner join counted as c
        on c.dossier_number = r.dossier_number and c.supplier_code = r.supplier_code and c.currency = r.currency
    union all
    select
        x.dossier_number,
        x.supplier_code,
        x.currency,
        x.invoice_date,
        fr.rate_to_eur / tr.rate_to_eur,
        round(x.signed_amount_incl_tax * fr.rate_to_eur / tr.rate_to_eur, 2)
    from counted_converted as x
    left join rates as fr on fr.currency = x.currency and x.invoice_date >= fr.valid_from and x.invoice_date < fr.valid_to
    left join rates as tr
        on tr.currency = x.to_currency and x.invoice_date >= tr.valid_from and x.invoice_date < tr.valid_to
),

invoiced as (
    select
        dossier_number,
        supplier_code,
        sum(amount) as invoiced_amount,
        count(*) as matched_lines,
        max(invoice_date) as last_invoice_date,
        string_agg(distinct case when exchange_rate is not null then invoice_currency end, ',') as converted_from_currency,
        -- the rate of the latest converted line, to show how the row was converted
        (array_agg(exchange_rate order by invoice_date desc) filter (where exchange_rate is not null))[1] as exchange_rate
    from invoiced_lines
    group by dossier_number, supplier_code
),

amounts as (
    select
        r.dossier_number,
        r.supplier_code,
        r.currency,
        coalesce(e.expected_amount, 0) as e,
        coalesce(i.invoiced_amount, 0) as i,
        coalesce(w.written_off_amount, 0) as w,
        cast({{ var('billing_tolerance') }} as numeric(14, 2)) as t,
        i.last_invoice_date,
        i.converted_from_currency,
        i.exchange_rate,
        coalesce(i.matched_lines, 0) as matched_lines
    from row_currency as r
    left join expected as e on e.dossier_number = r.dossier_number and e.supplier_code = r.supplier_code
    left join invoiced as i on i.dossier_number = r.dossier_number and i.supplier_code = r.supplier_code
    left join written_off as w on w.dossier_number = r.dossier_number and w.supplier_code = r.supplier_code
)

select
    dossier_number::text as dossier_number,
    supplier_code::text as supplier_code,
    currency::text as currency,
    e::numeric(14, 2) as expected_amount,
    i::numeric(14, 2) as invoiced_amount,
    (i - e)::numeric(14, 2) as difference,
    t::numeric(14, 2) as tolerance,
    -- outputs.md, in this order: the rules overlap only at I = 0, where not_invoiced wins. A
    -- written-off difference counts as settled: E is taken as E + W.
    (case
        when i = 0 and e + w <> 0 then 'not_invoiced'
        when abs(i - e - w) <= t then 'invoiced'
        when i > e + w + t then 'over_invoiced'
        else 'partially_invoiced'
    end)::text as status,
    last_invoice_date::date as last_invoice_date,
    converted_from_currency::text as converted_from_currency,
    exchange_rate::numeric(18, 8) as exchange_rate,
    matched_lines::integer as matched_lines,
    w::numeric(14, 2) as written_off_amount,
    (i - e - w)::numeric(14, 2) as remaining_difference
from amounts
-- Something expected or something invoiced (outputs.md).
where e <> 0 or matched_lines > 0

{#- Purchase journal (AC): one entry per supplier invoice or credit note. Travel services bought
    for the traveller are charged to 604 VAT included: under the margin scheme their VAT is not
    deductible (Directive 2006/112 art. 310, CGI art. 268 bis), so no 44566 line. The supplier's
    auxiliary account is credited with the total; a credit note (negative signed amounts) reverses
    both sides. Amounts in EUR at the rate of the invoice date: a foreign-currency
    operation is booked at the rate of its date. -#}
{{ entries_supplier_invoices() }}

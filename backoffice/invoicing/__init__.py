"""Client invoicing: gapless numbers (numbering), the Factur-X XML (facturx_xml) and the PDF/A-3 (pdf)."""

"""Questions a visitor might ask about the demo site, and the page that answers each.

Data for retrieval-quality tests: each answerable question is answered by exactly one page of
`rag/demo_site.py`, in the question's language; the unanswerable ones share no content word with the site.
"""

# (question, locale, URL path of the page that answers it)
QUESTIONS: list[tuple[str, str, str]] = [
    ("¿Cuánto cuesta una limpieza dental?", "es", "/demo-site/precios/"),
    ("¿Aceptáis el seguro de Adeslas?", "es", "/demo-site/precios/"),
    ("¿Tenéis parking cerca de la clínica?", "es", "/demo-site/horario-y-ubicacion/"),
    ("¿Cuánto tarda un implante en integrarse en el hueso?", "es", "/demo-site/implantes/"),
    ("¿Cuántas horas al día hay que llevar los alineadores invisibles?", "es", "/demo-site/ortodoncia/"),
    ("¿Cuánto dura el blanqueamiento que se hace en la clínica?", "es", "/demo-site/servicios/"),
    ("Si no puedo ir a mi cita, ¿con cuánta antelación tengo que avisar?", "es", "/demo-site/preguntas-frecuentes/"),
    ("Me duele muchísimo una muela, ¿me podéis ver hoy?", "es", "/demo-site/preguntas-frecuentes/"),
    ("¿Quién es la directora de la clínica?", "es", "/demo-site/"),
    ("¿Puedo pedir cita por WhatsApp?", "es", "/demo-site/contacto/"),
    ("How much does a dental implant cost?", "en", "/demo-site/en/prices/"),
    ("Do you have parking?", "en", "/demo-site/en/opening-hours/"),
    ("How long does treatment with invisible aligners take?", "en", "/demo-site/en/orthodontics/"),
    ("When are the stitches taken out after implant surgery?", "en", "/demo-site/en/implants/"),
    ("What is your cancellation policy?", "en", "/demo-site/en/faq/"),
    ("Which languages do your dentists speak?", "en", "/demo-site/en/"),
    ("What should I bring to my first appointment?", "en", "/demo-site/en/contact/"),
    ("At what age should my child have their first check-up?", "en", "/demo-site/en/services/"),
]

# (question, locale): nothing on the site answers these.
UNANSWERABLE: list[tuple[str, str]] = [
    ("¿Reparáis motores de motocicleta averiados?", "es"),
    ("¿Qué aerolínea vuela barato a Islandia?", "es"),
    ("Can you repair a flat tyre on my scooter?", "en"),
    ("Which airline flies nonstop to Reykjavik?", "en"),
]

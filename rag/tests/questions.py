"""Questions a visitor might ask about the demo site, and the page that answers each.

Data for retrieval-quality tests and `bench/run.py quality`: each answerable question is answered by
one page of `rag/demo_site.py`, in the question's language; the unanswerable ones share no content word
with the site. The first questions of each language follow the page's wording closely; the rest are put
as a visitor would, in their own words ("¿Abren el domingo?", "Do you see kids?").
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
    # In the visitor's words
    ("¿Abren el domingo?", "es", "/demo-site/horario-y-ubicacion/"),
    ("¿Atienden a niños?", "es", "/demo-site/servicios/"),
    ("¿Cuánto cuesta ponerse brackets?", "es", "/demo-site/precios/"),
    ("¿Cuánto me cobráis por blanquear los dientes?", "es", "/demo-site/precios/"),
    ("¿Se puede pagar a plazos?", "es", "/demo-site/precios/"),
    ("¿Se puede pagar con Bizum?", "es", "/demo-site/precios/"),
    ("¿Trabajáis con Sanitas?", "es", "/demo-site/precios/"),
    ("¿Cuánto cuesta sacar una muela del juicio?", "es", "/demo-site/precios/"),
    ("¿Cómo llego en metro?", "es", "/demo-site/horario-y-ubicacion/"),
    ("¿Abrís en agosto?", "es", "/demo-site/horario-y-ubicacion/"),
    ("¿Se puede entrar con silla de ruedas?", "es", "/demo-site/horario-y-ubicacion/"),
    ("¿Me puedo quitar los alineadores para comer?", "es", "/demo-site/ortodoncia/"),
    ("¿A qué edad conviene llevar a mi hijo al ortodoncista?", "es", "/demo-site/ortodoncia/"),
    ("¿Después de ponerme un implante puedo fumar?", "es", "/demo-site/implantes/"),
    ("¿Qué pasa si no tengo suficiente hueso para un implante?", "es", "/demo-site/implantes/"),
    ("¿Hacéis sedación para la gente que tiene pánico al dentista?", "es", "/demo-site/preguntas-frecuentes/"),
    ("Estoy embarazada, ¿puedo ir al dentista?", "es", "/demo-site/preguntas-frecuentes/"),
    ("¿Me dais un papel para justificar la falta en el trabajo?", "es", "/demo-site/preguntas-frecuentes/"),
    ("¿Hablan inglés los dentistas?", "es", "/demo-site/"),
    ("¿Os puedo mandar un email?", "es", "/demo-site/contacto/"),
    ("¿Qué tengo que llevar el primer día?", "es", "/demo-site/contacto/"),
    ("¿Cada cuánto hay que hacerse una limpieza?", "es", "/demo-site/servicios/"),
    ("How much does a dental implant cost?", "en", "/demo-site/en/prices/"),
    ("Do you have parking?", "en", "/demo-site/en/opening-hours/"),
    ("How long does treatment with invisible aligners take?", "en", "/demo-site/en/orthodontics/"),
    ("When are the stitches taken out after implant surgery?", "en", "/demo-site/en/implants/"),
    ("What is your cancellation policy?", "en", "/demo-site/en/faq/"),
    ("Which languages do your dentists speak?", "en", "/demo-site/en/"),
    ("What should I bring to my first appointment?", "en", "/demo-site/en/contact/"),
    ("At what age should my child have their first check-up?", "en", "/demo-site/en/services/"),
    # In the visitor's words
    ("Are you open on Sundays?", "en", "/demo-site/en/opening-hours/"),
    ("Do you see kids?", "en", "/demo-site/en/services/"),
    ("How much are braces?", "en", "/demo-site/en/prices/"),
    ("What do you charge for teeth whitening?", "en", "/demo-site/en/prices/"),
    ("Can I pay in monthly installments?", "en", "/demo-site/en/prices/"),
    ("Do you take Bizum?", "en", "/demo-site/en/prices/"),
    ("Do you work with Sanitas?", "en", "/demo-site/en/prices/"),
    ("How much to pull out a wisdom tooth?", "en", "/demo-site/en/prices/"),
    ("Is there a metro stop nearby?", "en", "/demo-site/en/opening-hours/"),
    ("Are you open in August?", "en", "/demo-site/en/opening-hours/"),
    ("Can I get in with a wheelchair?", "en", "/demo-site/en/opening-hours/"),
    ("Can I take the aligners out to eat?", "en", "/demo-site/en/orthodontics/"),
    ("Can I smoke after getting an implant?", "en", "/demo-site/en/implants/"),
    ("How long is the warranty on an implant?", "en", "/demo-site/en/implants/"),
    ("Do you offer sedation for nervous patients?", "en", "/demo-site/en/faq/"),
    ("I'm pregnant, can I still see a dentist?", "en", "/demo-site/en/faq/"),
    ("Can my 15-year-old come in without me?", "en", "/demo-site/en/faq/"),
    ("Can I get a note for my employer?", "en", "/demo-site/en/faq/"),
    ("Can I email you?", "en", "/demo-site/en/contact/"),
    ("How often should I get my teeth cleaned?", "en", "/demo-site/en/services/"),
]

# (question, locale): nothing on the site answers these.
UNANSWERABLE: list[tuple[str, str]] = [
    ("¿Reparáis motores de motocicleta averiados?", "es"),
    ("¿Qué aerolínea vuela barato a Islandia?", "es"),
    ("Can you repair a flat tyre on my scooter?", "en"),
    ("Which airline flies nonstop to Reykjavik?", "en"),
]

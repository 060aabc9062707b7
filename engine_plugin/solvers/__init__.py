"""Ways to solve ``argmin_y E(x, y)``, each written against ``StructuredEnergy``."""
